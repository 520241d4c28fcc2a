package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tls, ipv6 bool
		size      int
	}{
		{"tcp", false, false, 300000},
		{"tls over ipv6", true, true, 70000},
		{"empty message", false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, run(tc.tls, tc.ipv6, false, tc.size))
		})
	}
}
