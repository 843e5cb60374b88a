//go:build !race

package content

// raceEnabled: the race detector slows byte-by-byte work about tenfold.
const raceEnabled = false
