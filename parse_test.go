package msrp

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Everything the API prints as a value reads back with its Parse function.
func TestParseReadsWhatStringPrints(t *testing.T) {
	for _, f := range []FailureReport{FailureReportYes, FailureReportNo, FailureReportPartial} {
		got, err := ParseFailureReport(f.String())
		require.NoError(t, err)
		assert.Equal(t, f, got)
	}
	for st := StateConnected; st <= StateDone; st++ {
		got, err := ParseSessionState(st.String())
		require.NoError(t, err)
		assert.Equal(t, st, got)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		start := 1 + rng.Int64N(1<<40)
		r := ByteRange{Start: start, End: start - 1 + rng.Int64N(1<<20), Total: Unknown}
		if rng.IntN(2) == 0 {
			r.Total = r.End + rng.Int64N(1<<20)
		}
		if rng.IntN(3) == 0 {
			r.End = Unknown
		}
		got, err := ParseByteRange(r.String())
		require.NoError(t, err, r.String())
		assert.Equal(t, r, got)
	}
	for _, s := range []Status{{Code: 200}, {Code: 413, Comment: "Message too large"}, {Code: 481, Comment: "no such session"}} {
		got, err := ParseStatus(s.String())
		require.NoError(t, err)
		assert.Equal(t, s, got)
	}
	u, err := ParseURI("msrps://[::1]:2855/sid;tcp")
	require.NoError(t, err)
	back, err := ParseURI(u.String())
	require.NoError(t, err)
	assert.True(t, u.Equal(back))
}

// What is not a value of the type is refused with an error that says so.
func TestParseRefusesOtherValues(t *testing.T) {
	_, err := ParseFailureReport("maybe")
	assert.ErrorIs(t, err, ErrHeaderInvalid)
	assert.Equal(t, "FailureReport(9)", FailureReport(9).String())
	_, err = ParseSessionState("connected")
	assert.Error(t, err, "names are msrplib's, in capitals")
	_, err = ParseByteRange("5-3/10")
	assert.ErrorIs(t, err, ErrHeaderInvalid)
	_, err = ParseStatus("200 OK")
	assert.ErrorIs(t, err, ErrHeaderInvalid)
}
