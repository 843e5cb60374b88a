// Package curator is the curator's side of a cluster: its home folder
// (keys, configs, the block store holding the signed heads) and, built on
// it, the services a curator runs.
package curator
