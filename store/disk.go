package store

import "strings"

// Disk budget: what badger may write that a full disk turns into a crash.
//
// Badger v4 writes its memtable WALs (.mem), value logs (.vlog), discard
// statistics (DISCARD) and new tables (.sst) through memory maps of
// files it creates sparse (ristretto's z.OpenMmapFile truncates a new
// file to its full size): a write to a page the file system cannot
// allocate raises SIGBUS, which kills the process. So a daemon keeps:
//
//   - every mapped log fully allocated (see MappedLog, MappedLogSize): a
//     .mem file is 2 × memTableSize (8 MiB), the value log being written
//     2 × valueLogFileSize (128 MiB, cut back to what it holds when badger
//     moves to the next), DISCARD 1 MiB and doubling;
//   - a reserve of DiskReserve bytes of free space, for what badger writes
//     into new files once the daemon stops adding data: the flush of every
//     memtable to level 0, a new memtable WAL, a new value-log file (value
//     -log GC or a large CRDT delta may start one) and the output of its
//     compactions, written before their inputs are deleted.
const (
	// flushBytes: each memtable flushes to one level-0 table of at most
	// its size.
	flushBytes = memTables * memTableSize
	// walBytes: the WAL of the memtable that replaces a full one.
	walBytes = 2 * memTableSize
	// vlogBytes: a new value-log file, as badger maps it.
	vlogBytes = 2 * valueLogFileSize
	// compactionBytes: compactor 0 merges level 0 (up to
	// numLevelZeroTables tables of a memtable each) into the base level
	// (baseLevelSize); the other one a table of one level into the tables
	// it overlaps below, up to levelSizeMultiplier + 1 tables.
	compactionBytes = numLevelZeroTables*memTableSize + baseLevelSize +
		(compactors-1)*(levelSizeMultiplier+1)*baseTableSize
	// discardBytes: DISCARD doubling once.
	discardBytes = 2 << 20

	// DiskReserve is the free space a daemon keeps for badger to finish
	// its work in after it stops adding data: 12 + 8 + 128 + 41 + 2 MiB
	// = 191 MiB with the settings above.
	DiskReserve = flushBytes + walBytes + vlogBytes + compactionBytes + discardBytes

	// LargeValue is the size from which a value goes to the value log
	// instead of the memtable WAL.
	LargeValue = valueThreshold
)

// MappedLog reports whether name, a file in a datastore folder, is one
// badger writes through a sparse memory map and keeps open for writes:
// a memtable WAL, a value log or the discard statistics. Tables are
// written whole when they are created and need no more space after.
func MappedLog(name string) bool {
	return strings.HasSuffix(name, ".mem") || strings.HasSuffix(name, ".vlog") || name == "DISCARD"
}

// MappedLogSize returns the size badger maps a new file name at (0 if
// name is not a mapped log): what it may write into it.
func MappedLogSize(name string) int64 {
	switch {
	case strings.HasSuffix(name, ".mem"):
		return walBytes
	case strings.HasSuffix(name, ".vlog"):
		return vlogBytes
	case name == "DISCARD":
		return 1 << 20
	}
	return 0
}
