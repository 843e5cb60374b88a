package pinset

// crash stops the replica like a killed process would leave it: goroutines
// stop, but buffered index updates are lost and nothing is marked clean.
func (s *Set) crash() {
	s.closeOnce.Do(func() {
		s.shut()
		s.feed.stop()
		_ = s.crdt.Close()
		s.feed.wait()
		if s.pre != nil {
			s.pre.stop()
		}
		s.idx.mu.Lock()
		clear(s.idx.buf)
		s.idx.mu.Unlock()
		s.closeErr = ErrClosed
	})
}
