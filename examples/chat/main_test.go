package main

import (
	"bytes"
	"testing"

	"github.com/go-msrp/msrp"
	"github.com/go-msrp/msrp/examples/internal/relaytrust"
	"github.com/go-msrp/msrp/internal/testrelay"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func checkRun(t *testing.T, o options) string {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, run(&out, o), out.String())
	assert.Contains(t, out.String(), "SHA-256")
	assert.Contains(t, out.String(), "matches")
	assert.Contains(t, out.String(), "session closed cleanly")
	return out.String()
}

func TestChat(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    options
	}{
		{"tcp", options{size: 3 << 20}},
		{"tls", options{useTLS: true, size: 500000}},
		{"empty file", options{size: 0}},
		{"log", options{size: 1000, logTraffic: true}},
		{"tls, log", options{useTLS: true, size: 1000, logTraffic: true}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkRun(t, tc.o) })
	}
}

// Every combination the README presents with a relay, through a real
// Kamailio relay: plain, TLS (Bob over msrps, the relay trusted by its CA
// file or its fingerprint), and with the traffic log.
func TestChatThroughKamailio(t *testing.T) {
	start := func(t *testing.T, useTLS bool) *testrelay.Relay { return testrelay.ForTest(t, useTLS, nil) }
	relayFor := func(t *testing.T, r *testrelay.Relay, caFile, fingerprint string) *msrp.MSRPRelaySettings {
		s, err := msrp.ParseRelaySettings(r.URL())
		require.NoError(t, err)
		s.TLSConfig, err = relaytrust.TLSConfig(caFile, fingerprint)
		require.NoError(t, err)
		return s
	}
	t.Run("relay", func(t *testing.T) {
		r := start(t, false)
		out := checkRun(t, options{relay: relayFor(t, r, "", ""), size: 1 << 20})
		assert.Contains(t, out, "through the relay")
	})
	t.Run("relay, log", func(t *testing.T) {
		r := start(t, false)
		checkRun(t, options{relay: relayFor(t, r, "", ""), size: 1000, logTraffic: true})
	})
	t.Run("tls, relay trusted by its CA file", func(t *testing.T) {
		r := start(t, true)
		out := checkRun(t, options{useTLS: true, relay: relayFor(t, r, r.CAFile, ""), size: 1 << 20})
		assert.Contains(t, out, "through the relay MSRPRelay msrps://")
	})
	t.Run("tls, relay trusted by its fingerprint", func(t *testing.T) {
		r := start(t, true)
		checkRun(t, options{useTLS: true, relay: relayFor(t, r, "", "a=fingerprint:"+r.Fingerprint), size: 200000})
	})
	t.Run("tls, relay, log", func(t *testing.T) {
		r := start(t, true)
		checkRun(t, options{useTLS: true, relay: relayFor(t, r, r.CAFile, ""), size: 1000, logTraffic: true})
	})
	t.Run("plain endpoints through a TLS relay", func(t *testing.T) {
		r := start(t, true)
		out := checkRun(t, options{relay: relayFor(t, r, r.CAFile, ""), size: 200000})
		assert.Contains(t, out, "through the relay MSRPRelay msrps://")
	})
	t.Run("tls, relay not trusted", func(t *testing.T) {
		r := start(t, true)
		var out bytes.Buffer
		err := run(&out, options{useTLS: true, relay: relayFor(t, r, "", ""), size: 10})
		assert.ErrorContains(t, err, "certificate signed by unknown authority")
	})
}
