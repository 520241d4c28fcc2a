package msrp

import (
	"crypto/tls"
	"log/slog"
)

// MSRPRelaySettings names an RFC 4976 relay and the credentials to
// authenticate to it, msrplib's MSRPRelaySettings.
//
// With no Host, the relay is found by DNS SRV (_msrps._tcp.<Domain>, or
// _msrp._tcp.<Domain> without TLS), falling back to Domain:2855. TLS is on
// unless DisableTLS is set: msrplib's default, and relays such as msrprelay
// refuse plain TCP.
//
// Printing the settings (String, or a slog attribute) never shows the
// password.
type MSRPRelaySettings struct {
	Domain     string      // the relay's domain: digest realm, SRV name, AUTH URI host
	Username   string      // digest username
	Password   string      // digest password; never logged
	Host       string      // relay host; empty: DNS SRV on Domain
	Port       int         // relay port; 0: from SRV, else DefaultPort
	DisableTLS bool        // use msrp:// and TCP instead of msrps:// and TLS
	TLSConfig  *tls.Config // client TLS settings; never modified
}

// URI returns the relay URI that AUTH requests are sent to and that digest
// uses as its uri parameter: the scheme, Domain (or Host when Domain is
// empty) and Port, without a session id.
func (r *MSRPRelaySettings) URI() URI {
	host := r.Domain
	if host == "" {
		host = r.Host
	}
	return URI{UseTLS: !r.DisableTLS, Host: host, Port: r.Port, Transport: "tcp"}
}

// String describes the relay without credentials: "MSRPRelay msrps://user@host:port".
func (r *MSRPRelaySettings) String() string {
	u := r.URI()
	if r.Host != "" {
		u.Host = r.Host
	}
	u.User = r.Username
	return "MSRPRelay " + u.String()
}

// GoString keeps the password out of %#v.
func (r *MSRPRelaySettings) GoString() string { return r.String() }

// LogValue keeps the password out of structured logs.
func (r *MSRPRelaySettings) LogValue() slog.Value {
	return slog.StringValue(r.String())
}
