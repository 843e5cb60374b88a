package p2p

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// registerCounterVec registers a counter vector with reg, or returns the
// one already registered under the same name: several nodes in one
// process (tests, the demo) share the series.
func registerCounterVec(reg prometheus.Registerer, opts prometheus.CounterOpts, labels ...string) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(opts, labels)
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return nil, err
		}
		return existing, nil
	}
	return c, nil
}
