// Package chainlog feeds the logs of verified heads, in chain order, into
// a ledger (package ledger) and keeps it on disk: what the signed chain
// records of every member's commitments and audits. Curators and
// followers each run one.
package chainlog
