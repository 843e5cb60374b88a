package curator

import "github.com/pinfold/pinfold/allocation"

// The allocation a new cluster starts with.
const (
	AllocationAlgorithm = allocation.Algorithm
	AllocationVersion   = allocation.Version
	AllocationEpsilon   = allocation.DefaultEpsilon // parts per million over the mean fill
)
