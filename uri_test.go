package msrp

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseURI(t *testing.T) {
	tests := []struct {
		in   string
		want URI
	}{
		{"msrp://atlanta.example.com:7654/jshA7weztas;tcp",
			URI{Host: "atlanta.example.com", Port: 7654, SessionID: "jshA7weztas", Transport: "tcp"}},
		{"msrps://alice@intra.example.com;tcp",
			URI{UseTLS: true, User: "alice", Host: "intra.example.com", Transport: "tcp"}},
		{"msrp://[::1]:2855/s1;tcp",
			URI{Host: "::1", Port: 2855, SessionID: "s1", Transport: "tcp"}},
		{"msrp://[2001:db8::7]/s1;tcp",
			URI{Host: "2001:db8::7", SessionID: "s1", Transport: "tcp"}},
		{"msrp://127.0.0.1:9/a/b+c=d_e~f.g;tcp;foo=bar;baz",
			URI{Host: "127.0.0.1", Port: 9, SessionID: "a/b+c=d_e~f.g", Transport: "tcp",
				Params: []Param{{"foo", "bar"}, {"baz", ""}}}},
		{"msrp://user:pw%20x@h/s;sctp",
			URI{User: "user:pw%20x", Host: "h", SessionID: "s", Transport: "sctp"}},
		{"MSRPS://Relay.Example.COM:12/ID;TCP",
			URI{UseTLS: true, Host: "Relay.Example.COM", Port: 12, SessionID: "ID", Transport: "TCP"}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseURI(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			again, err := ParseURI(got.String())
			require.NoError(t, err)
			assert.Equal(t, got, again, "parse → String → parse is stable")
		})
	}
}

func TestURIRoundTripExact(t *testing.T) {
	for _, s := range []string{
		"msrp://atlanta.example.com:7654/jshA7weztas;tcp",
		"msrps://alice@intra.example.com;tcp",
		"msrp://[::1]:2855/s1;tcp",
		"msrp://127.0.0.1:9/a/b;tcp;foo=bar;baz",
		"msrps://relay.example.com:2855/hjdhfsesdf;tcp",
	} {
		u, err := ParseURI(s)
		require.NoError(t, err)
		assert.Equal(t, s, u.String())
	}
}

func TestParseURIErrors(t *testing.T) {
	for _, s := range []string{
		"",
		"sip:alice@example.com",
		"msrp:/host/s;tcp",
		"msrp://host/s",           // no transport
		"msrp://host",             // no transport
		"msrp:///s;tcp",           // no host
		"msrp://host:/s;tcp",      // empty port
		"msrp://host:0/s;tcp",     // port 0
		"msrp://host:65536/s;tcp", // port too big
		"msrp://host:+12/s;tcp",
		"msrp://host:012/s;tcp",
		"msrp://host:ab/s;tcp",
		"msrp://[::1/s;tcp",
		"msrp://[::1]x/s;tcp",
		"msrp://[127.0.0.1]/s;tcp",
		"msrp://[fe80::1%25eth0]/s;tcp",
		"msrp://::1/s;tcp",
		"msrp://ho st/s;tcp",
		"msrp://host/;tcp",        // empty session id
		"msrp://host/s s;tcp",     // space in session id
		"msrp://host/s;",          // empty transport
		"msrp://host/s;tcp;",      // empty parameter
		"msrp://host/s;tcp;a=",    // empty value
		"msrp://host/s;tcp;a b=c", // bad name
		"msrp://@host/s;tcp",      // empty userinfo
		"msrp://a@b@host/s;tcp",   // @ in userinfo
		"msrp://host%zz/s;tcp",
	} {
		_, err := ParseURI(s)
		assert.Error(t, err, "%q", s)
	}
}

func TestURIEqual(t *testing.T) {
	base := "msrp://host.example.com:2855/SeSsIoN;tcp"
	tests := []struct {
		other string
		equal bool
	}{
		{"msrp://HOST.example.COM:2855/SeSsIoN;TCP", true},     // host and transport case-insensitive
		{"msrp://host.example.com/SeSsIoN;tcp", true},          // absent port is 2855
		{"msrp://bob@host.example.com:2855/SeSsIoN;tcp", true}, // user ignored
		{"msrp://host.example.com:2855/SeSsIoN;tcp;x=y", true}, // params ignored
		{"msrp://host.example.com:2855/session;tcp", false},    // session id case-sensitive
		{"msrps://host.example.com:2855/SeSsIoN;tcp", false},   // scheme
		{"msrp://host.example.com:2856/SeSsIoN;tcp", false},    // port
		{"msrp://other.example.com:2855/SeSsIoN;tcp", false},   // host
		{"msrp://host.example.com:2855/SeSsIoN;sctp", false},   // transport
		{"msrp://host.example.com:2855;tcp", false},            // relay URI, no session
	}
	a, err := ParseURI(base)
	require.NoError(t, err)
	for _, tc := range tests {
		b, err := ParseURI(tc.other)
		require.NoError(t, err)
		assert.Equal(t, tc.equal, a.Equal(b), tc.other)
		assert.Equal(t, tc.equal, b.Equal(a), tc.other)
	}
	assert.True(t, URI{Host: "h", SessionID: "s"}.Equal(URI{Host: "h", SessionID: "s", Transport: "tcp"}))

	// Equivalent spellings of one host (RFC 4975 §6.1, RFC 3986 §6.2.2).
	for _, pair := range [][2]string{
		{"msrp://[::1]:9/s;tcp", "msrp://[0:0:0:0:0:0:0:1]:9/s;tcp"},
		{"msrp://[2001:db8::1]:9/s;tcp", "msrp://[2001:DB8:0::0:1]:9/s;tcp"},
		{"msrp://ex%61mple.com:9/s;tcp", "msrp://EXAMPLE.com:9/s;tcp"},
		{"msrp://%65xample%2Ecom:9/s;tcp", "msrp://example.com:9/s;tcp"},
	} {
		a, err := ParseURI(pair[0])
		require.NoError(t, err)
		b, err := ParseURI(pair[1])
		require.NoError(t, err)
		assert.True(t, a.Equal(b), "%s = %s", pair[0], pair[1])
		assert.True(t, b.Equal(a), "%s = %s", pair[1], pair[0])
	}
	x, _ := ParseURI("msrp://[::1]:9/s;tcp")
	y, _ := ParseURI("msrp://[::2]:9/s;tcp")
	assert.False(t, x.Equal(y))
}

func TestURIHostPortAndScheme(t *testing.T) {
	assert.Equal(t, "example.com:2855", URI{Host: "example.com"}.HostPort())
	assert.Equal(t, "[::1]:9000", URI{Host: "::1", Port: 9000}.HostPort())
	assert.Equal(t, "msrps", URI{UseTLS: true}.Scheme())
	assert.Equal(t, "msrp", URI{}.Scheme())
	assert.Equal(t, "msrp://h/s;tcp", URI{Host: "h", SessionID: "s"}.String(), "empty transport prints as tcp")
}

func TestPath(t *testing.T) {
	s := "msrps://relay.example.com:2855/r1;tcp   msrp://[::1]:9/s;tcp"
	path, err := ParsePath(s)
	require.NoError(t, err)
	require.Len(t, path, 2)
	assert.Equal(t, "msrps://relay.example.com:2855/r1;tcp msrp://[::1]:9/s;tcp", FormatPath(path))
	assert.True(t, pathEqual(path, path))
	assert.False(t, pathEqual(path, path[:1]))
	assert.False(t, pathEqual(path[:1], path[1:]))

	_, err = ParsePath("  ")
	assert.Error(t, err)
	_, err = ParsePath("msrp://a/b;tcp bogus")
	assert.Error(t, err)
}

func TestMsrplibBug18RandomIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		sid, tid, mid := NewSessionID(), NewTransactionID(), NewMessageID()
		assert.Len(t, sid, 24) // 96 bits
		assert.Len(t, tid, 20) // 80 bits
		assert.True(t, validSessionID(sid))
		assert.True(t, validIdent(tid))
		assert.True(t, validIdent(mid))
		require.False(t, seen[tid], "duplicate id")
		seen[tid] = true
	}
}

// Hosts that differ only in a percent-escape of a byte outside ASCII are
// different hosts, and different server keys. Before, decoding and then
// strings.ToLower turned both bytes into U+FFFD, and they compared equal.
func TestURIEqualDistinctPercentEscapes(t *testing.T) {
	a, err := ParseURI("msrp://host%FFa:2855/s1234;tcp")
	require.NoError(t, err)
	b, err := ParseURI("msrp://host%FEa:2855/s1234;tcp")
	require.NoError(t, err)
	assert.False(t, a.Equal(b), "%s and %s are different hosts", a, b)
	var srv MSRPServer
	assert.NotEqual(t, srv.remoteKey([]URI{a}), srv.remoteKey([]URI{b}))
}

// URI.Equal's normal forms: IPv6 forms,
// percent-encoded unreserved characters, case, default port and transport.
func TestURIEqualForms(t *testing.T) {
	for _, pair := range [][2]string{
		{"msrp://[::1]:2855/s;tcp", "msrp://[0:0:0:0:0:0:0:1]/s;TCP"},
		{"msrp://%61tlanta.example.com/s;tcp", "msrp://ATLANTA.example.com:2855/s;tcp"},
		{"msrp://[2001:DB8::1]/s;tcp", "msrp://[2001:db8:0::1]/s;tcp"},
	} {
		a, err := ParseURI(pair[0])
		require.NoError(t, err)
		b, err := ParseURI(pair[1])
		require.NoError(t, err)
		assert.True(t, a.Equal(b), "%s = %s", pair[0], pair[1])
	}
	for _, pair := range [][2]string{
		{"msrp://[::1]/s;tcp", "msrp://127.0.0.1/s;tcp"},
		{"msrp://a/s;tcp", "msrp://a/S;tcp"},
		{"msrps://a/s;tcp", "msrp://a/s;tcp"},
	} {
		a, _ := ParseURI(pair[0])
		b, _ := ParseURI(pair[1])
		assert.False(t, a.Equal(b), "%s != %s", pair[0], pair[1])
	}
}

// Hosts that differ outside ASCII are different hosts, for Equal as for
// the server's keys: only ASCII letters fold. Before, Equal tried
// strings.EqualFold first, which folds the Kelvin sign U+212A to "k" and
// the long s U+017F to "s".
func TestURIEqualDistinctNonASCIIHosts(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"\u212a.example.com", "k.example.com"},      // KELVIN SIGN
		{"\u017fip.example.com", "sip.example.com"},  // LATIN SMALL LETTER LONG S
		{"\u00e9.example.com", "\u00c9.example.com"}, // é and É: distinct bytes
	} {
		a := URI{Host: tc.a, Port: 2855, SessionID: "abcd", Transport: "tcp"}
		b := URI{Host: tc.b, Port: 2855, SessionID: "abcd", Transport: "tcp"}
		assert.NotEqual(t, normalHost(tc.a), normalHost(tc.b), "normal forms of %q and %q", tc.a, tc.b)
		assert.False(t, a.Equal(b), "%q and %q are distinct hosts but compare equal", tc.a, tc.b)
	}
}

// RFC 3986 §6.2.2 equivalences over parsed URIs compare equal, and near
// misses do not.
func TestURIHostNormalForm(t *testing.T) {
	eq := [][2]string{
		{"msrp://EXAMPLE.com/s;tcp", "msrp://example.COM/s;tcp"},
		{"msrp://%7Eh.example/s;tcp", "msrp://~h.example/s;tcp"},
		{"msrp://%41b.example/s;tcp", "msrp://ab.example/s;tcp"},
		{"msrp://caf%c3%a9.example/s;tcp", "msrp://caf%C3%A9.example/s;tcp"},
		{"msrp://[0:0::1]:2855/s;tcp", "msrp://[::1]/s;tcp"},
		{"msrp://[::ffff:7f00:1]/s;tcp", "msrp://[::FFFF:127.0.0.1]/s;tcp"},
		{"msrp://%31%32%37.0.0.1/s;tcp", "msrp://127.0.0.1/s;tcp"},
	}
	ne := [][2]string{
		{"msrp://caf%C3%A9.example/s;tcp", "msrp://caf%C3%89.example/s;tcp"},
		{"msrp://a%2Eb/s;tcp", "msrp://a%2Fb/s;tcp"},
		{"msrp://a%3Ab/s;tcp", "msrp://a%3bb/s;tcp"},
		{"msrp://127.000.000.001/s;tcp", "msrp://127.0.0.1/s;tcp"},
		{"msrp://[::ffff:127.0.0.1]/s;tcp", "msrp://127.0.0.1/s;tcp"},
	}
	for want, pairs := range map[bool][][2]string{true: eq, false: ne} {
		for _, p := range pairs {
			a, err := ParseURI(p[0])
			require.NoError(t, err)
			b, err := ParseURI(p[1])
			require.NoError(t, err)
			assert.Equal(t, want, a.Equal(b), "%s == %s", p[0], p[1])
		}
	}
}
