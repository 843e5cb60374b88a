// Package configs holds pinfold's configuration files: the cluster config a
// curator exports and followers join with, the curator's own config and the
// follower's. Each has a Default, a Validate that changes nothing and names
// the offending field, and JSON load/save that keeps sizes and durations
// human-readable ("500GiB", "30s").
package configs
