// Package relaytrust turns the examples' relay flags into the TLS settings
// for a relay: a CA file to trust, or the fingerprint of the relay's own
// certificate, for a relay with a self-signed one.
package relaytrust

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-msrp/msrp"
)

// TLSConfig returns the client TLS settings that trust the relay by caFile
// (PEM certificates) or by fingerprint (an a=fingerprint value, with or
// without "a=fingerprint:"); nil when both are empty: the system's CAs.
func TLSConfig(caFile, fingerprint string) (*tls.Config, error) {
	switch {
	case caFile != "" && fingerprint != "":
		return nil, errors.New("give the relay's CA file or its fingerprint, not both")
	case caFile != "":
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		return &tls.Config{RootCAs: pool}, nil
	case fingerprint != "":
		verify, err := msrp.VerifyFingerprint(Fingerprint(fingerprint))
		if err != nil {
			return nil, err
		}
		// The fingerprint does the checking, not a CA.
		return &tls.Config{InsecureSkipVerify: true, VerifyConnection: verify}, nil
	}
	return nil, nil
}

// Fingerprint accepts a fingerprint as SDP writes it, "a=fingerprint:" and
// all.
func Fingerprint(s string) string {
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "a=fingerprint:"))
}
