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
