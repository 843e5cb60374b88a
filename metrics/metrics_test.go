package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestFuncAndMount(t *testing.T) {
	reg := NewRegistry()
	seq := 1.0
	reg.MustRegister(NewFunc("follower", func() []Sample {
		return []Sample{
			{Name: "head_seq", Help: "Newest head.", Value: seq},
			{Name: "shards", Help: "By state.", Labels: map[string]string{"state": "stored"}, Value: 3},
			{Name: "shards", Help: "By state.", Labels: map[string]string{"state": "queued"}, Value: 1},
			{Name: "refusals_total", Help: "Refused.", Labels: map[string]string{"reason": "bad sig"}, Value: 7, Counter: true},
		}
	}))
	for _, profiling := range []bool{false, true} {
		mux := http.NewServeMux()
		Mount(mux, reg, profiling)
		srv := httptest.NewServer(mux)
		seq++
		code, body := get(t, srv.URL+"/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d\n%s", code, body)
		}
		for _, want := range []string{
			fmt.Sprintf("pinfold_follower_head_seq %g\n", seq), // read at each scrape
			`pinfold_follower_shards{state="stored"} 3`,
			`pinfold_follower_shards{state="queued"} 1`,
			"# TYPE pinfold_follower_refusals_total counter",
			`pinfold_follower_refusals_total{reason="bad sig"} 7`,
			"# TYPE pinfold_follower_head_seq gauge",
			"go_goroutines ",
			"process_resident_memory_bytes ",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
		code, _ = get(t, srv.URL+"/debug/pprof/")
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[profiling]; code != want {
			t.Errorf("pprof %v: /debug/pprof/ answered %d, want %d", profiling, code, want)
		}
		srv.Close()
	}
}
