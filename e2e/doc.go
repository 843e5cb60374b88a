// Package e2e holds the end-to-end tests that build the real curate and
// follow binaries and run them as separate processes on 127.0.0.1.
package e2e
