// Package metrics is what the daemons serve to Prometheus and to
// profilers on their local API: a registry per daemon (libp2p's metrics,
// the topic refusals, the Go runtime and the process, and the daemon's
// own gauges read from its status at each scrape), /metrics, and, behind
// a flag, net/http/pprof.
package metrics

import (
	"net/http"
	"net/http/pprof"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes the daemons' own metrics.
const Namespace = "pinfold"

// NewRegistry returns a registry holding the Go runtime and process
// collectors. The daemon passes it to its libp2p node and registers its
// own collector on it.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Mount serves reg at GET /metrics on mux and, if profiling, the runtime
// profiles under /debug/pprof/ (CPU, heap, goroutines, ...). Profiles
// show the process's internals and cost CPU while taken, so they are off
// unless the operator asks (--pprof).
func Mount(mux *http.ServeMux, reg *prometheus.Registry, profiling bool) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if !profiling {
		return
	}
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// Sample is one value of a gauge that a daemon reads from its status.
type Sample struct {
	Name   string // without the namespace: "head_seq"
	Help   string
	Labels map[string]string // nil for none
	Value  float64
	// Counter: the value only grows (a total since the daemon started);
	// otherwise it is a gauge.
	Counter bool
}

// Shared returns the samples both daemons serve beside their own: the
// content bytes bitswap received and sent, and the refusals by reason.
func Shared(received, sent uint64, refused map[string]uint64) []Sample {
	out := []Sample{
		{Name: "bitswap_received_bytes_total", Help: "Content bytes received over bitswap.", Value: float64(received), Counter: true},
		{Name: "bitswap_sent_bytes_total", Help: "Content bytes served over bitswap.", Value: float64(sent), Counter: true},
	}
	for reason, n := range refused {
		out = append(out, Sample{Name: "refusals_total", Help: "Messages, heads and ACKs refused, by reason.", Labels: map[string]string{"reason": reason}, Value: float64(n), Counter: true})
	}
	return out
}

// Func is a collector that asks read for its samples at each scrape, so
// the values are the status's, never a second copy kept in step. It is
// unchecked (it describes nothing up front): the samples it returns
// decide its metrics.
type Func struct {
	subsystem string
	read      func() []Sample
}

// NewFunc returns a collector of read's samples, named
// pinfold_<subsystem>_<name>.
func NewFunc(subsystem string, read func() []Sample) *Func {
	return &Func{subsystem: subsystem, read: read}
}

// Describe implements prometheus.Collector; an unchecked collector sends
// no descriptions.
func (f *Func) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (f *Func) Collect(ch chan<- prometheus.Metric) {
	descs := map[string]*prometheus.Desc{}
	for _, s := range f.read() {
		keys := make([]string, 0, len(s.Labels))
		for k := range s.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		id := s.Name
		for _, k := range keys {
			id += "\x00" + k
		}
		d, ok := descs[id]
		if !ok {
			d = prometheus.NewDesc(prometheus.BuildFQName(Namespace, f.subsystem, s.Name), s.Help, keys, nil)
			descs[id] = d
		}
		vals := make([]string, len(keys))
		for i, k := range keys {
			vals[i] = s.Labels[k]
		}
		kind := prometheus.GaugeValue
		if s.Counter {
			kind = prometheus.CounterValue
		}
		m, err := prometheus.NewConstMetric(d, kind, s.Value, vals...)
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}
}
