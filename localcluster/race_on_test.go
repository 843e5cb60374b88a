//go:build race

package localcluster_test

// raceEnabled: the race detector slows the whole stack several times,
// signature checks and validation included.
const raceEnabled = true
