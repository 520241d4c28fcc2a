package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestChat(t *testing.T) {
	for _, tc := range []struct {
		name   string
		useTLS bool
		size   int
	}{{"tcp", false, 3 << 20}, {"tls", true, 500000}, {"empty file", false, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, run(&out, tc.useTLS, nil, tc.size, false))
			assert.Contains(t, out.String(), "SHA-256")
			assert.Contains(t, out.String(), "matches")
			assert.Contains(t, out.String(), "session closed cleanly")
		})
	}
}

func TestParseRelay(t *testing.T) {
	r, err := parseRelay("msrps://alice:pw@relay.example.com:2856")
	require.NoError(t, err)
	assert.Equal(t, "relay.example.com", r.Host)
	assert.Equal(t, 2856, r.Port)
	assert.Equal(t, "pw", r.Password)
	assert.False(t, r.DisableTLS)
	r, err = parseRelay("msrp://bob:x@127.0.0.1")
	require.NoError(t, err)
	assert.True(t, r.DisableTLS)
	for _, bad := range []string{"relay.example.com", "http://a:b@c", "msrp://c", "msrps://u:p@h:port"} {
		_, err := parseRelay(bad)
		assert.Error(t, err, bad)
	}
}
