package configs

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pinfold/pinfold/p2p"
)

const (
	testPeer = "12D3KooWGRUVh4G7M6ekLvkK2onxYdj4hJSD9oXbe8GJ97dFVpPk"
	testCID  = "bafyreigdmqpykrgxyaxtlafqpqhzrb7qy2rh75nldvfd4tucqmqqme5yje"
)

func validCluster() Cluster {
	return Cluster{
		Version:    Version,
		Name:       "demo",
		ID:         "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8",
		Checkpoint: Checkpoint{Head: testCID, Seq: 0, Trust: []string{testPeer}},
		Bootstrap:  []string{"/ip4/127.0.0.1/tcp/4050/p2p/" + testPeer},
		Topics:     DefaultTopics("k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8"),
	}
}

func TestClusterValidate(t *testing.T) {
	ok := validCluster()
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid cluster rejected: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Cluster)
		field  string
	}{
		{"version", func(c *Cluster) { c.Version = 2 }, "cluster.version"},
		{"empty name", func(c *Cluster) { c.Name = "" }, "cluster.name"},
		{"name with slash", func(c *Cluster) { c.Name = "a/b" }, "cluster.name"},
		{"dotdot name", func(c *Cluster) { c.Name = ".." }, "cluster.name"},
		{"bad id", func(c *Cluster) { c.ID = "nope" }, "cluster.id"},
		{"bad head", func(c *Cluster) { c.Checkpoint.Head = "xyz" }, "cluster.checkpoint.head"},
		{"negative seq", func(c *Cluster) { c.Checkpoint.Seq = -1 }, "cluster.checkpoint.seq"},
		{"no trust", func(c *Cluster) { c.Checkpoint.Trust = nil }, "cluster.checkpoint.trust"},
		{"bad trust", func(c *Cluster) { c.Checkpoint.Trust = []string{"x"} }, "cluster.checkpoint.trust[0]"},
		{"bootstrap no p2p", func(c *Cluster) { c.Bootstrap = []string{"/ip4/127.0.0.1/tcp/1"} }, "cluster.bootstrap[0]"},
		{"bootstrap garbage", func(c *Cluster) { c.Bootstrap = []string{"hello"} }, "cluster.bootstrap[0]"},
		{"empty topic", func(c *Cluster) { c.Topics.Acks = "" }, "cluster.topics.acks"},
		{"same topic", func(c *Cluster) { c.Topics.Acks = c.Topics.Heads }, "cluster.topics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCluster()
			tt.mutate(&c)
			before, _ := json.Marshal(c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("error %q does not name field %s", err, tt.field)
			}
			after, _ := json.Marshal(c)
			if string(before) != string(after) {
				t.Fatal("Validate changed the config")
			}
		})
	}
}

func TestCuratorValidate(t *testing.T) {
	def := DefaultCurator()
	if err := def.Validate(); err != nil {
		t.Fatalf("default rejected: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Curator)
		field  string
	}{
		{"repl", func(c *Curator) { c.ReplicationMin, c.ReplicationMax = 3, 2 }, "curator.replication_min"},
		{"repl zero", func(c *Curator) { c.ReplicationMin = 0 }, "curator.replication_min"},
		{"repl over the allocation limit", func(c *Curator) { c.ReplicationMax = 65 }, "curator.replication_max"},
		{"admission", func(c *Curator) { c.Admission = "maybe" }, "curator.admission"},
		{"remote api without token", func(c *Curator) { c.API = "0.0.0.0:9650" }, "curator.api_token"},
		{"api garbage", func(c *Curator) { c.API = "nowhere" }, "curator.api"},
		{"no listen", func(c *Curator) { c.Listen = nil }, "curator.listen"},
		{"bad listen", func(c *Curator) { c.Listen = []string{"tcp://x"} }, "curator.listen[0]"},
		{"interval", func(c *Curator) { c.HeadInterval = 0 }, "curator.head_interval"},
		{"allocation version", func(c *Curator) { c.AllocationVersion = 99 }, "curator.allocation_version"},
		{"negative allocation version", func(c *Curator) { c.AllocationVersion = -1 }, "curator.allocation_version"},
		{"allowlist", func(c *Curator) { c.Allowlist = []string{"bob"} }, "curator.allowlist[0]"},
		{"dht mode", func(c *Curator) { c.DHT.Mode = "on" }, "curator.dht.mode"},
		{"dht mode empty", func(c *Curator) { c.DHT.Mode = "" }, "curator.dht.mode"},
		{"dht bootstrap no p2p", func(c *Curator) { c.DHT.Bootstrap = []string{"/ip4/127.0.0.1/tcp/1"} }, "curator.dht.bootstrap[0]"},
		{"dht bootstrap garbage", func(c *Curator) {
			c.DHT.Bootstrap = []string{"/ip4/127.0.0.1/tcp/1/p2p/" + testPeer, "dht.example.com"}
		}, "curator.dht.bootstrap[1]"},
		{"dht prefix", func(c *Curator) { c.DHT.ProtocolPrefix = "ipfs" }, "curator.dht.protocol_prefix"},
		{"dht prefix trailing", func(c *Curator) { c.DHT.ProtocolPrefix = "/ipfs/" }, "curator.dht.protocol_prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultCurator()
			tt.mutate(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("got %v, want an ErrInvalid naming %s", err, tt.field)
			}
		})
	}
	for _, mode := range []string{"client", "server", "auto"} {
		c := DefaultCurator()
		c.DHT = DHT{Mode: mode, Bootstrap: []string{"/ip4/127.0.0.1/udp/1/quic-v1/p2p/" + testPeer}, ProtocolPrefix: "/pinfold"}
		if err := c.Validate(); err != nil || !c.DHT.Enabled() {
			t.Errorf("dht mode %s rejected: %v", mode, err)
		}
	}
	remote := DefaultCurator()
	remote.API, remote.APIToken = "0.0.0.0:9650", "secret"
	if err := remote.Validate(); err != nil {
		t.Fatalf("remote API with token rejected: %v", err)
	}
}

func TestFollowerValidate(t *testing.T) {
	def := DefaultFollower()
	if err := def.Validate(); err != nil {
		t.Fatalf("default rejected: %v", err)
	}
	f := DefaultFollower()
	f.API = "0.0.0.0:1"
	if err := f.Validate(); err == nil || !strings.Contains(err.Error(), "follower.api") {
		t.Fatalf("non-loopback API: got %v", err)
	}
	f = DefaultFollower()
	f.DHT.Bootstrap = []string{"/ip4/127.0.0.1/tcp/1"}
	if err := f.Validate(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "follower.dht.bootstrap[0]") {
		t.Fatalf("dht bootstrap without peer ID: got %v", err)
	}
	for _, api := range []string{"ftp://127.0.0.1:5001", "127.0.0.1", "http://127.0.0.1:5001/api/v0", "/ip4/127.0.0.1/udp/5001"} {
		f = DefaultFollower()
		f.IPFSAPI = api
		if err := f.Validate(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "follower.ipfs_api") {
			t.Fatalf("ipfs_api %q: got %v", api, err)
		}
	}
	for _, api := range []string{"http://127.0.0.1:5001", "127.0.0.1:5001", "/ip4/127.0.0.1/tcp/5001"} {
		f = DefaultFollower()
		f.IPFSAPI = api
		if err := f.Validate(); err != nil {
			t.Fatalf("ipfs_api %q rejected: %v", api, err)
		}
	}
	f = DefaultFollower()
	f.FetchConcurrency = 0
	if err := f.Validate(); err == nil || !strings.Contains(err.Error(), "follower.fetch_concurrency") {
		t.Fatalf("zero concurrency: got %v", err)
	}
	for _, m := range []Size{0, MinMemory, DefaultFollowerMemory, 4 << 30} {
		f = DefaultFollower()
		f.Memory = m
		if err := f.Validate(); err != nil {
			t.Fatalf("memory %s rejected: %v", m, err)
		}
	}
	f = DefaultFollower()
	f.Memory = MinMemory - 1
	if err := f.Validate(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "follower.memory") {
		t.Fatalf("memory under %s: got %v", Size(MinMemory), err)
	}
	// A config.json written before the field existed gets the default.
	old := DefaultFollower()
	if err := json.Unmarshal([]byte(`{"storage":"80%"}`), &old); err != nil || old.Memory != DefaultFollowerMemory {
		t.Fatalf("config without memory: %v, memory %s", err, old.Memory)
	}
}

func TestDHTConfigJSON(t *testing.T) {
	def := DefaultCurator()
	if def.DHT.Enabled() || def.DHT.ProtocolPrefix != "/ipfs" || len(def.DHT.Bootstrap) != 0 {
		t.Fatalf("DHT default = %+v, want off, /ipfs, no bootstrap", def.DHT)
	}
	tests := []struct {
		name, in string
		want     DHT
		err      string
	}{
		{"absent keeps default", `{}`, DefaultDHT(), ""},
		{"partial", `{"dht":{"mode":"server"}}`, DHT{Mode: "server", ProtocolPrefix: "/ipfs"}, ""},
		{"full", `{"dht":{"mode":"client","bootstrap":["/ip4/127.0.0.1/tcp/4050/p2p/` + testPeer + `"],"protocol_prefix":"/pinfold"}}`,
			DHT{Mode: "client", Bootstrap: []string{"/ip4/127.0.0.1/tcp/4050/p2p/" + testPeer}, ProtocolPrefix: "/pinfold"}, ""},
		{"unknown field", `{"dht":{"mode":"server","public":true}}`, DHT{}, "public"},
		{"bad mode", `{"dht":{"mode":"yes"}}`, DHT{}, "follower.dht.mode"},
		{"bad bootstrap", `{"dht":{"mode":"client","bootstrap":["/dns/x/tcp/1"]}}`, DHT{}, "follower.dht.bootstrap[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A follower config of an older version has no dht section.
			f := DefaultFollower()
			base, _ := json.Marshal(f)
			var m map[string]json.RawMessage
			if err := json.Unmarshal(base, &m); err != nil {
				t.Fatal(err)
			}
			delete(m, "dht")
			var extra map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tt.in), &extra); err != nil {
				t.Fatal(err)
			}
			for k, v := range extra {
				m[k] = v
			}
			data, _ := json.Marshal(m)
			err := Decode(data, &f)
			if tt.err != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Decode = %v, want ErrInvalid mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got, _ := json.Marshal(f.DHT); string(got) != mustJSON(t, tt.want) {
				t.Fatalf("DHT = %s, want %s", got, mustJSON(t, tt.want))
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSizeRoundTrip(t *testing.T) {
	cases := map[string]Size{"500GiB": 500 << 30, "40MiB": 40 << 20, "1000": 1000, "0": 0, "3KiB": 3 << 10, "1PiB": 1 << 50}
	for text, want := range cases {
		got, err := ParseSize(text)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", text, got, err, want)
		}
		if got.String() != text {
			t.Errorf("%d.String() = %q, want %q", got, got.String(), text)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		s := Size(r.Int64N(1 << 55))
		if r.IntN(2) == 0 {
			s = Size(r.Int64N(1<<20)) << (10 * r.IntN(5))
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back Size
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Fatalf("size %d -> %s -> %d, %v", s, b, back, err)
		}
	}
	for _, bad := range []string{"", "-5GiB", "five", "1 ZiB", "99999999999PiB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

func TestPledge(t *testing.T) {
	p, err := ParsePledge("80%")
	if err != nil || p.Percent != 80 || p.Resolve(1000) != 800 {
		t.Fatalf("80%%: %+v %v", p, err)
	}
	p, err = ParsePledge("40MiB")
	if err != nil || p.Resolve(1) != 40<<20 {
		t.Fatalf("40MiB: %+v %v", p, err)
	}
	for _, bad := range []string{"0%", "101%", "0", "x%", "-1GiB", ""} {
		if _, err := ParsePledge(bad); err == nil {
			t.Errorf("ParsePledge(%q) accepted", bad)
		}
	}
}

func TestLoadBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	good := validCluster()
	goodPath := filepath.Join(dir, "good.json")
	if err := Save(goodPath, &good, 0o644); err != nil {
		t.Fatal(err)
	}
	var back Cluster
	if err := Load(goodPath, &back); err != nil {
		t.Fatalf("load saved config: %v", err)
	}
	tests := []struct{ name, content, want string }{
		{"syntax", "{\n  \"version\": 1,\n  \"name\": \"demo\"\n  \"id\": 3\n}", "line 4"},
		{"unknown field", `{"version":1,"colour":"red"}`, "colour"},
		{"wrong type", `{"version":"one"}`, "version"},
		{"trailing", `{"version":1,"name":"demo"} {}`, "trailing"},
		{"empty", ``, "invalid"},
		{"valid json invalid config", `{"version":1}`, "cluster.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name+".json")
			if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			var c Cluster
			err := Load(p, &c)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrInvalid mentioning %q", err, tt.want)
			}
		})
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+10), 0o644); err != nil {
		t.Fatal(err)
	}
	var c Cluster
	if err := Load(big, &c); !errors.Is(err, ErrInvalid) {
		t.Fatalf("oversized file: got %v", err)
	}
}

func FuzzDecodeCluster(f *testing.F) {
	good := validCluster()
	b, _ := json.Marshal(good)
	f.Add(b)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Cluster
		if err := Decode(data, &c); err == nil {
			if err := c.Validate(); err != nil {
				t.Fatalf("decoded config fails validation: %v", err)
			}
		}
	})
}

// TestDefaultPortsDiffer: a curator and a follower with their defaults
// listen on different ports, so both run on one host.
func TestDefaultPortsDiffer(t *testing.T) {
	port := func(addr string) string {
		parts := strings.Split(addr, "/")
		return parts[4]
	}
	used := map[string]bool{}
	for _, a := range DefaultCurator().Listen {
		used[port(a)] = true
	}
	for _, a := range DefaultFollower().Listen {
		if used[port(a)] {
			t.Fatalf("the follower's default %s shares its port with the curator's %v", a, DefaultCurator().Listen)
		}
	}
}

func TestNATAndClusterDHTValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Follower)
		field  string // "" means valid
	}{
		{"default", func(*Follower) {}, ""},
		{"opt out", func(f *Follower) { f.NAT = NAT{} }, ""},
		{"port map without traversal", func(f *Follower) { f.NAT.Traversal = false }, "follower.nat.port_map"},
		{"reachability", func(f *Follower) { f.NAT.Reachability = "public" }, ""},
		{"bad reachability", func(f *Follower) { f.NAT.Reachability = "yes" }, "follower.nat.reachability"},
		{"cluster dht off", func(f *Follower) { f.ClusterDHT.Mode = "off" }, ""},
		{"cluster dht auto", func(f *Follower) { f.ClusterDHT.Mode = "auto" }, "follower.cluster_dht.mode"},
		{"provide interval short", func(f *Follower) { f.ClusterDHT.ProvideInterval = Duration(time.Second) }, "follower.cluster_dht.provide_interval"},
		{"provide interval long", func(f *Follower) { f.ClusterDHT.ProvideInterval = Duration(48 * time.Hour) }, "follower.cluster_dht.provide_interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := DefaultFollower()
			tt.change(&f)
			err := f.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("Validate() = %v, want it to name %s", err, tt.field)
			}
		})
	}
}

func TestNetworkApply(t *testing.T) {
	const relay = "/ip4/11.0.0.10/tcp/4050/p2p/12D3KooWEaVjx7z3WQpsbprHNnvRu8mL6ANDJy7bU9KHLupRjYwS"
	tests := []struct {
		name      string
		listen    []string
		nat       NAT
		traversal bool
	}{
		{"follower", []string{"/ip4/0.0.0.0/tcp/4051"}, DefaultFollowerNAT(), true},
		{"follower on loopback", []string{"/ip4/127.0.0.1/tcp/0", "/ip6/::1/tcp/0"}, DefaultFollowerNAT(), false},
		{"follower partly on loopback", []string{"/ip4/127.0.0.1/tcp/0", "/ip4/10.0.0.2/tcp/1"}, DefaultFollowerNAT(), true},
		{"opted out", []string{"/ip4/0.0.0.0/tcp/4051"}, NAT{}, false},
		{"curator", []string{"/ip4/0.0.0.0/tcp/4050"}, DefaultCuratorNAT(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := p2p.DefaultConfig()
			got := Network{ClusterID: "k51x", Relays: []string{relay}, Listen: tt.listen, NAT: tt.nat,
				Cluster: DefaultClusterDHT(), DHT: DefaultDHT()}.Apply(&cfg)
			if got != tt.traversal || cfg.Relay != got || cfg.HolePunching != got || (len(cfg.StaticRelays) > 0) != got ||
				cfg.NATPortMap != (got && tt.nat.PortMap) {
				t.Fatalf("Apply = %v, relay %v, hole punching %v, static relays %v, port map %v; want traversal %v",
					got, cfg.Relay, cfg.HolePunching, cfg.StaticRelays, cfg.NATPortMap, tt.traversal)
			}
			if cfg.RelayService != tt.nat.RelayService || cfg.AutoNATService != tt.nat.RelayService {
				t.Errorf("relay service %v, AutoNAT service %v; want %v", cfg.RelayService, cfg.AutoNATService, tt.nat.RelayService)
			}
			if cfg.ClusterDHT.Mode != p2p.DHTServer || cfg.ClusterDHT.ProtocolPrefix != "/pinfold/k51x" || cfg.Provide.Interval != 22*time.Hour {
				t.Errorf("cluster DHT %+v, provide %+v", cfg.ClusterDHT, cfg.Provide)
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("applied config invalid: %v", err)
			}
		})
	}
}
