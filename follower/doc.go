// Package follower is the volunteer's side of a cluster: its data folder
// (key, configs, datastore) and, built on it, the services a follower runs.
package follower
