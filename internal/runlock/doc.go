// Package runlock is a daemon's claim on its data folder: an exclusive
// advisory lock (flock) on a small file that also says which process holds
// it, since when, and what it is doing ("opening the datastore",
// "rebuilding the index", "running"). Other commands read it to tell
// "already running (pid N)" and "starting: …" from "not running", and the
// lock ends with the process, so a kill -9 leaves nothing to clean up.
package runlock
