package p2p

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// configJSON is the on-disk form of Config. Pointers tell an absent field
// (keep the current value) from a zero one.
type configJSON struct {
	Listen             []string     `json:"listen,omitempty"`
	Announce           []string     `json:"announce,omitempty"`
	Bootstrap          []string     `json:"bootstrap,omitempty"`
	PeersFile          *string      `json:"peers_file,omitempty"`
	RememberPeers      *int         `json:"remember_peers,omitempty"`
	SavePeersEvery     *jsonDur     `json:"save_peers_every,omitempty"`
	ConnLow            *int         `json:"conn_low,omitempty"`
	ConnHigh           *int         `json:"conn_high,omitempty"`
	ConnGrace          *jsonDur     `json:"conn_grace,omitempty"`
	DialTimeout        *jsonDur     `json:"dial_timeout,omitempty"`
	ReconnectMin       *jsonDur     `json:"reconnect_min,omitempty"`
	ReconnectMax       *jsonDur     `json:"reconnect_max,omitempty"`
	KeepReconnectMax   *jsonDur     `json:"keep_reconnect_max,omitempty"`
	KeepMembers        *int         `json:"keep_members,omitempty"`
	MaxParallelDials   *int         `json:"max_parallel_dials,omitempty"`
	Relay              *bool        `json:"relay,omitempty"`
	HolePunching       *bool        `json:"hole_punching,omitempty"`
	NATPortMap         *bool        `json:"nat_port_map,omitempty"`
	StaticRelays       []string     `json:"static_relays,omitempty"`
	RelayService       *bool        `json:"relay_service,omitempty"`
	RelayLimits        *relayJSON   `json:"relay_limits,omitempty"`
	AutoNATService     *bool        `json:"autonat_service,omitempty"`
	ForceReachability  *string      `json:"force_reachability,omitempty"`
	MaxMessageSize     *jsonSize    `json:"max_message_size,omitempty"`
	PeerExchange       *bool        `json:"peer_exchange,omitempty"`
	FloodPublish       *bool        `json:"flood_publish,omitempty"`
	SubscriptionBuffer *int         `json:"subscription_buffer,omitempty"`
	ValidateTimeout    *jsonDur     `json:"validate_timeout,omitempty"`
	RatePerSecond      *float64     `json:"rate_per_second,omitempty"`
	RateBurst          *int         `json:"rate_burst,omitempty"`
	Rejections         *int         `json:"rejections,omitempty"`
	Bitswap            *bitswapJSON `json:"bitswap,omitempty"`
	DHT                *dhtJSON     `json:"dht,omitempty"`
	ClusterDHT         *dhtJSON     `json:"cluster_dht,omitempty"`
	Provide            *provideJSON `json:"provide,omitempty"`
}

type relayJSON struct {
	Reservations    *int     `json:"reservations,omitempty"`
	CircuitsPerPeer *int     `json:"circuits_per_peer,omitempty"`
	Duration        *jsonDur `json:"duration,omitempty"`
	Data            *int64   `json:"data,omitempty"`
}

type provideJSON struct {
	Interval *jsonDur `json:"interval,omitempty"`
	Workers  *int     `json:"workers,omitempty"`
}

type dhtJSON struct {
	Mode           *DHTMode `json:"mode,omitempty"`
	Bootstrap      []string `json:"bootstrap,omitempty"`
	ProtocolPrefix *string  `json:"protocol_prefix,omitempty"`
}

type bitswapJSON struct {
	SearchDelay       *jsonDur  `json:"search_delay,omitempty"`
	RebroadcastDelay  *jsonDur  `json:"rebroadcast_delay,omitempty"`
	TargetMessageSize *jsonSize `json:"target_message_size,omitempty"`
	PerPeerSendDelay  *jsonDur  `json:"per_peer_send_delay,omitempty"`
	PromiseTimeout    *jsonDur  `json:"promise_timeout,omitempty"`
	Penalty           *jsonDur  `json:"penalty,omitempty"`
}

// MarshalJSON writes every field; durations as "1m0s", sizes as "1MiB".
func (c Config) MarshalJSON() ([]byte, error) {
	d := func(v time.Duration) *jsonDur { j := jsonDur(v); return &j }
	s := func(v int) *jsonSize { j := jsonSize(v); return &j }
	return json.Marshal(configJSON{
		Listen: c.Listen, Announce: c.Announce, Bootstrap: c.Bootstrap,
		PeersFile: &c.PeersFile, RememberPeers: &c.RememberPeers, SavePeersEvery: d(c.SavePeersEvery),
		ConnLow: &c.ConnLow, ConnHigh: &c.ConnHigh, ConnGrace: d(c.ConnGrace),
		DialTimeout: d(c.DialTimeout), ReconnectMin: d(c.ReconnectMin), ReconnectMax: d(c.ReconnectMax),
		KeepReconnectMax: d(c.KeepReconnectMax), KeepMembers: &c.KeepMembers,
		MaxParallelDials: &c.MaxParallelDials,
		Relay:            &c.Relay, HolePunching: &c.HolePunching, NATPortMap: &c.NATPortMap,
		StaticRelays: c.StaticRelays, RelayService: &c.RelayService, AutoNATService: &c.AutoNATService,
		ForceReachability: &c.ForceReachability,
		RelayLimits: &relayJSON{
			Reservations: &c.RelayLimits.Reservations, CircuitsPerPeer: &c.RelayLimits.CircuitsPerPeer,
			Duration: d(c.RelayLimits.Duration), Data: &c.RelayLimits.Data,
		},
		MaxMessageSize: s(c.MaxMessageSize), PeerExchange: &c.PeerExchange, FloodPublish: &c.FloodPublish,
		SubscriptionBuffer: &c.SubscriptionBuffer, ValidateTimeout: d(c.ValidateTimeout),
		RatePerSecond: &c.RatePerSecond, RateBurst: &c.RateBurst, Rejections: &c.Rejections,
		Bitswap: &bitswapJSON{
			SearchDelay:       d(c.Bitswap.SearchDelay),
			RebroadcastDelay:  d(c.Bitswap.RebroadcastDelay),
			TargetMessageSize: s(c.Bitswap.TargetMessageSize),
			PerPeerSendDelay:  d(c.Bitswap.PerPeerSendDelay),
			PromiseTimeout:    d(c.Bitswap.PromiseTimeout),
			Penalty:           d(c.Bitswap.Penalty),
		},
		DHT:        &dhtJSON{Mode: &c.DHT.Mode, Bootstrap: c.DHT.Bootstrap, ProtocolPrefix: &c.DHT.ProtocolPrefix},
		ClusterDHT: &dhtJSON{Mode: &c.ClusterDHT.Mode, Bootstrap: c.ClusterDHT.Bootstrap, ProtocolPrefix: &c.ClusterDHT.ProtocolPrefix},
		Provide:    &provideJSON{Interval: d(c.Provide.Interval), Workers: &c.Provide.Workers},
	})
}

// UnmarshalJSON reads the form MarshalJSON writes. Absent fields keep their
// current value, so decoding onto DefaultConfig() fills in defaults; a
// present list replaces the whole list. Unknown fields are rejected. It
// does not call Validate and leaves Blockstore and Metrics alone.
func (c *Config) UnmarshalJSON(data []byte) error {
	var j configJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("%w: p2p: %w", ErrInvalidConfig, err)
	}
	out := *c
	if j.Listen != nil {
		out.Listen = j.Listen
	}
	if j.Announce != nil {
		out.Announce = j.Announce
	}
	if j.Bootstrap != nil {
		out.Bootstrap = j.Bootstrap
	}
	setStr(&out.PeersFile, j.PeersFile)
	setInt(&out.RememberPeers, j.RememberPeers)
	setDur(&out.SavePeersEvery, j.SavePeersEvery)
	setInt(&out.ConnLow, j.ConnLow)
	setInt(&out.ConnHigh, j.ConnHigh)
	setDur(&out.ConnGrace, j.ConnGrace)
	setDur(&out.DialTimeout, j.DialTimeout)
	setDur(&out.ReconnectMin, j.ReconnectMin)
	setDur(&out.ReconnectMax, j.ReconnectMax)
	setDur(&out.KeepReconnectMax, j.KeepReconnectMax)
	setInt(&out.KeepMembers, j.KeepMembers)
	setInt(&out.MaxParallelDials, j.MaxParallelDials)
	setBool(&out.Relay, j.Relay)
	setBool(&out.HolePunching, j.HolePunching)
	setBool(&out.NATPortMap, j.NATPortMap)
	setSize(&out.MaxMessageSize, j.MaxMessageSize)
	setBool(&out.PeerExchange, j.PeerExchange)
	setBool(&out.FloodPublish, j.FloodPublish)
	setInt(&out.SubscriptionBuffer, j.SubscriptionBuffer)
	setDur(&out.ValidateTimeout, j.ValidateTimeout)
	if j.RatePerSecond != nil {
		out.RatePerSecond = *j.RatePerSecond
	}
	setInt(&out.RateBurst, j.RateBurst)
	setInt(&out.Rejections, j.Rejections)
	if b := j.Bitswap; b != nil {
		setDur(&out.Bitswap.SearchDelay, b.SearchDelay)
		setDur(&out.Bitswap.RebroadcastDelay, b.RebroadcastDelay)
		setSize(&out.Bitswap.TargetMessageSize, b.TargetMessageSize)
		setDur(&out.Bitswap.PerPeerSendDelay, b.PerPeerSendDelay)
		setDur(&out.Bitswap.PromiseTimeout, b.PromiseTimeout)
		setDur(&out.Bitswap.Penalty, b.Penalty)
	}
	if j.StaticRelays != nil {
		out.StaticRelays = j.StaticRelays
	}
	setBool(&out.RelayService, j.RelayService)
	setBool(&out.AutoNATService, j.AutoNATService)
	setStr(&out.ForceReachability, j.ForceReachability)
	if r := j.RelayLimits; r != nil {
		setInt(&out.RelayLimits.Reservations, r.Reservations)
		setInt(&out.RelayLimits.CircuitsPerPeer, r.CircuitsPerPeer)
		setDur(&out.RelayLimits.Duration, r.Duration)
		if r.Data != nil {
			out.RelayLimits.Data = *r.Data
		}
	}
	j.DHT.apply(&out.DHT)
	j.ClusterDHT.apply(&out.ClusterDHT)
	if p := j.Provide; p != nil {
		setDur(&out.Provide.Interval, p.Interval)
		setInt(&out.Provide.Workers, p.Workers)
	}
	*c = out
	return nil
}

func (h *dhtJSON) apply(out *DHTConfig) {
	if h == nil {
		return
	}
	if h.Mode != nil {
		out.Mode = *h.Mode
	}
	if h.Bootstrap != nil {
		out.Bootstrap = h.Bootstrap
	}
	setStr(&out.ProtocolPrefix, h.ProtocolPrefix)
}

func setStr(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

func setInt(dst *int, v *int) {
	if v != nil {
		*dst = *v
	}
}

func setBool(dst *bool, v *bool) {
	if v != nil {
		*dst = *v
	}
}

func setDur(dst *time.Duration, v *jsonDur) {
	if v != nil {
		*dst = time.Duration(*v)
	}
}

func setSize(dst *int, v *jsonSize) {
	if v != nil {
		*dst = int(*v)
	}
}

// jsonDur is a duration written as "30s".
type jsonDur time.Duration

func (d jsonDur) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *jsonDur) UnmarshalJSON(b []byte) error {
	var text string
	if err := json.Unmarshal(b, &text); err != nil {
		return fmt.Errorf("want a duration string like \"30s\"")
	}
	v, err := time.ParseDuration(text)
	if err != nil {
		return fmt.Errorf("duration %q: want a value like 250ms, 30s or 5m", text)
	}
	*d = jsonDur(v)
	return nil
}

// jsonSize is a byte count written as "1MiB" (or read as a plain number).
type jsonSize int

func (s jsonSize) MarshalJSON() ([]byte, error) { return json.Marshal(sizeString(int(s))) }

func (s *jsonSize) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		if n < 0 {
			return fmt.Errorf("size %d is negative", n)
		}
		*s = jsonSize(min(n, math.MaxInt32))
		return nil
	}
	var text string
	if err := json.Unmarshal(b, &text); err != nil {
		return fmt.Errorf("want a size string like \"1MiB\" or a byte count")
	}
	text = strings.TrimSpace(text)
	if strings.HasPrefix(text, "-") {
		return fmt.Errorf("size %q is negative", text)
	}
	v, err := humanize.ParseBytes(text)
	if err != nil {
		return fmt.Errorf("size %q: want a byte count like 1MiB or 256KiB", text)
	}
	*s = jsonSize(min(v, math.MaxInt32))
	return nil
}

// sizeString writes n in the largest IEC unit that divides it exactly, so
// what is read back is what was written.
func sizeString(n int) string {
	for _, u := range []struct {
		suffix string
		bytes  int
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n > 0 && n%u.bytes == 0 {
			return strconv.Itoa(n/u.bytes) + u.suffix
		}
	}
	return strconv.Itoa(n)
}
