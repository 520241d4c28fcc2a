// Package digest computes HTTP Digest authentication (RFC 2617) as MSRP
// relays use it for AUTH (RFC 4976 §5): MD5 and MD5-sess, qop "auth".
package digest

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Challenge is what a WWW-Authenticate: Digest header offers.
type Challenge struct {
	Realm, Nonce, Opaque, Algorithm string
	QOP                             []string // offered qop values; empty means none offered
	Stale                           bool
}

// Credentials answer a challenge.
type Credentials struct {
	Username, Password string
	Method, URI        string // "AUTH" and the relay URI
}

// Answer is a computed Authorization, with what is needed to check the
// server's rspauth afterwards.
type Answer struct {
	Username, Realm, Nonce, URI, Response, Algorithm, Opaque string
	QOP, NC, CNonce                                          string // empty QOP: RFC 2069 style, no nc/cnonce
	ha1, method                                              string
	count                                                    int
}

// ErrUnsupported reports a challenge this package cannot answer.
var ErrUnsupported = errors.New("digest: unsupported challenge")

// Respond answers a challenge with fresh cnonce and nonce count 1.
func Respond(ch Challenge, cred Credentials) (Answer, error) {
	alg := ch.Algorithm
	if alg == "" {
		alg = "MD5"
	}
	if !strings.EqualFold(alg, "MD5") && !strings.EqualFold(alg, "MD5-sess") {
		return Answer{}, fmt.Errorf("%w: algorithm %q", ErrUnsupported, ch.Algorithm)
	}
	qop := ""
	for _, q := range ch.QOP {
		if strings.EqualFold(strings.TrimSpace(q), "auth") {
			qop = "auth"
		}
	}
	if len(ch.QOP) > 0 && qop == "" {
		return Answer{}, fmt.Errorf("%w: qop %q (only auth is supported)", ErrUnsupported, strings.Join(ch.QOP, ","))
	}
	var raw [16]byte
	rand.Read(raw[:])
	a := Answer{
		Username: cred.Username, Realm: ch.Realm, Nonce: ch.Nonce, URI: cred.URI,
		Algorithm: ch.Algorithm, Opaque: ch.Opaque, QOP: qop,
	}
	if qop != "" || strings.EqualFold(alg, "MD5-sess") {
		a.CNonce = hex.EncodeToString(raw[:])
	}
	a.method = cred.Method
	a.ha1 = HA1(alg, cred.Username, ch.Realm, cred.Password, ch.Nonce, a.CNonce)
	return a.Next(), nil
}

// Next answers the same challenge again with the next nonce count, as a
// request that reuses a nonce must (RFC 2617 §3.2.2).
func (a Answer) Next() Answer {
	a.count++
	if a.QOP != "" {
		a.NC = fmt.Sprintf("%08x", a.count)
	}
	a.Response = ResponseValue(a.ha1, a.Nonce, a.NC, a.CNonce, a.QOP, a.method, a.URI)
	return a
}

// HA1 is H(username:realm:password), and for MD5-sess H(that:nonce:cnonce).
func HA1(algorithm, username, realm, password, nonce, cnonce string) string {
	ha1 := h(username + ":" + realm + ":" + password)
	if strings.EqualFold(algorithm, "MD5-sess") {
		ha1 = h(ha1 + ":" + nonce + ":" + cnonce)
	}
	return ha1
}

// ResponseValue is the request-digest of RFC 2617 §3.2.2.1.
func ResponseValue(ha1, nonce, nc, cnonce, qop, method, uri string) string {
	ha2 := h(method + ":" + uri)
	if qop == "" {
		return h(ha1 + ":" + nonce + ":" + ha2)
	}
	return h(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":" + qop + ":" + ha2)
}

// CheckRspauth verifies the rspauth of an Authentication-Info header: the
// digest the server computes with an empty method (RFC 2617 §3.2.3).
func (a Answer) CheckRspauth(rspauth string) bool {
	want := ResponseValue(a.ha1, a.Nonce, a.NC, a.CNonce, a.QOP, "", a.URI)
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(rspauth)), []byte(want)) == 1
}

// Header renders the Authorization value: quoted strings where RFC 2617
// wants them, and qop, nc and algorithm unquoted (msrplib quotes them,
// which strict relays refuse). opaque appears only when the server sent one.
func (a Answer) Header() string {
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username=%s, realm=%s, nonce=%s, uri=%s, response=%s`,
		quote(a.Username), quote(a.Realm), quote(a.Nonce), quote(a.URI), quote(a.Response))
	if a.Algorithm != "" {
		fmt.Fprintf(&b, ", algorithm=%s", a.Algorithm)
	}
	if a.QOP != "" {
		fmt.Fprintf(&b, ", qop=%s, nc=%s, cnonce=%s", a.QOP, a.NC, quote(a.CNonce))
	} else if a.CNonce != "" {
		fmt.Fprintf(&b, ", cnonce=%s", quote(a.CNonce))
	}
	if a.Opaque != "" {
		fmt.Fprintf(&b, ", opaque=%s", quote(a.Opaque))
	}
	return b.String()
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func h(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
