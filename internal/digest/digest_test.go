package digest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The worked example of RFC 2617 §3.5.
func TestRFC2617Example(t *testing.T) {
	ha1 := HA1("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life", "", "")
	got := ResponseValue(ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b", "auth", "GET", "/dir/index.html")
	assert.Equal(t, "6629fae49393a05397450978507c4ef1", got)
}

func TestRespond(t *testing.T) {
	ch := Challenge{Realm: "msrp-test", Nonce: "abc", QOP: []string{"auth", "auth-int"}, Opaque: "xyz"}
	a, err := Respond(ch, Credentials{Username: "alice", Password: "pw", Method: "AUTH", URI: "msrps://relay.example.com;tcp"})
	require.NoError(t, err)
	assert.Equal(t, "auth", a.QOP)
	assert.Equal(t, "00000001", a.NC)
	assert.Len(t, a.CNonce, 32)
	want := ResponseValue(HA1("MD5", "alice", "msrp-test", "pw", "", ""), "abc", "00000001", a.CNonce, "auth", "AUTH", "msrps://relay.example.com;tcp")
	assert.Equal(t, want, a.Response)
	hdr := a.Header()
	assert.True(t, strings.HasPrefix(hdr, `Digest username="alice", realm="msrp-test", nonce="abc", uri="msrps://relay.example.com;tcp"`))
	assert.Contains(t, hdr, ", qop=auth, nc=00000001, cnonce=\""+a.CNonce+`"`)
	assert.Contains(t, hdr, `opaque="xyz"`)

	// rspauth: the server's digest with an empty method.
	rsp := ResponseValue(a.ha1, "abc", "00000001", a.CNonce, "auth", "", "msrps://relay.example.com;tcp")
	assert.True(t, a.CheckRspauth(rsp))
	assert.True(t, a.CheckRspauth(strings.ToUpper(rsp)))
	assert.False(t, a.CheckRspauth("0123"))

	next := a.Next()
	assert.Equal(t, "00000002", next.NC)
	assert.Equal(t, ResponseValue(a.ha1, "abc", "00000002", a.CNonce, "auth", "AUTH", "msrps://relay.example.com;tcp"), next.Response)

	b, err := Respond(ch, Credentials{Username: "alice", Password: "pw", Method: "AUTH", URI: "x"})
	require.NoError(t, err)
	assert.NotEqual(t, a.CNonce, b.CNonce, "a fresh cnonce each time")
}

func TestMD5Sess(t *testing.T) {
	ch := Challenge{Realm: "r", Nonce: "n", QOP: []string{"auth"}, Algorithm: "MD5-sess"}
	a, err := Respond(ch, Credentials{Username: "u", Password: "p", Method: "AUTH", URI: "uri"})
	require.NoError(t, err)
	ha1 := HA1("MD5-sess", "u", "r", "p", "n", a.CNonce)
	assert.Equal(t, ResponseValue(ha1, "n", "00000001", a.CNonce, "auth", "AUTH", "uri"), a.Response)
	assert.Contains(t, a.Header(), "algorithm=MD5-sess")
}

func TestNoQOPAndUnsupported(t *testing.T) {
	a, err := Respond(Challenge{Realm: "r", Nonce: "n"}, Credentials{Username: "u", Password: "p", Method: "AUTH", URI: "uri"})
	require.NoError(t, err)
	assert.Equal(t, ResponseValue(HA1("MD5", "u", "r", "p", "", ""), "n", "", "", "", "AUTH", "uri"), a.Response)
	assert.NotContains(t, a.Header(), "qop")
	assert.NotContains(t, a.Header(), "opaque", "opaque only when given")
	_, err = Respond(Challenge{Realm: "r", Nonce: "n", Algorithm: "SHA-256"}, Credentials{})
	assert.ErrorIs(t, err, ErrUnsupported)
	_, err = Respond(Challenge{Realm: "r", Nonce: "n", QOP: []string{"auth-int"}}, Credentials{})
	assert.ErrorIs(t, err, ErrUnsupported)
}
