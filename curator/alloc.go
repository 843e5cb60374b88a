package curator

// The allocation a new cluster starts with. TODO(lead): take these from the
// allocation package once it exports its algorithm id and version.
const (
	AllocationAlgorithm = "pinfold/bounded-rendezvous"
	AllocationVersion   = 1
	AllocationEpsilon   = 50_000 // parts per million: fill at most 5 % over the mean
)
