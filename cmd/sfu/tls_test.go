package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tessera-rtc/tessera/configs"
	"golang.org/x/crypto/acme"
)

// seedAutocertCache puts a certificate for host into an autocert cache
// directory, as the manager stores the ones Let's Encrypt issues (private
// key, then chain, in PEM), so that the manager serves it without
// contacting anyone. It returns the certificate.
func seedAutocertCache(t *testing.T, dir, host string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour), // far from renewal
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	if err := os.WriteFile(filepath.Join(dir, host), data, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestAutocertTLS builds the server from a configuration with tls.autocert:
// its TLS comes from the autocert manager (certificates by SNI, the
// TLS-ALPN-01 protocol offered), it serves HTTPS with the manager's
// certificate, and it refuses other names. Let's Encrypt is never
// contacted: the certificate is already in the cache.
func TestAutocertTLS(t *testing.T) {
	const host = "meet.example.org"
	dir := t.TempDir()
	want := seedAutocertCache(t, dir, host)
	cfg, err := configs.Parse("test.yaml", []byte("listen: \":443\"\ntls:\n  autocert:\n    host: "+host+"\n    cache_dir: "+dir+"\nice:\n  loopback: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// Run it on a free loopback port: the test cannot bind 443.
	cfg.Listen = "127.0.0.1:0"
	srv, err := newServer(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tc := srv.net.tls
	if tc == nil || tc.GetCertificate == nil {
		t.Fatal("the server's TLS does not get its certificates from the autocert manager")
	}
	if !slices.Contains(tc.NextProtos, acme.ALPNProto) {
		t.Errorf("NextProtos = %q: the TLS-ALPN-01 challenge (%s) cannot be answered", tc.NextProtos, acme.ALPNProto)
	}

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx, func(a string) { ready <- a }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}

	roots := x509.NewCertPool()
	roots.AddCert(want)
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: host, RootCAs: roots})
	if err != nil {
		t.Fatalf("TLS to %s: %v", host, err)
	}
	if got := conn.ConnectionState().PeerCertificates[0]; !got.Equal(want) {
		t.Errorf("served certificate for %v, want the cached one", got.DNSNames)
	}
	conn.Close()

	hc := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: host, RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	resp, err := hc.Get("https://" + host + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over HTTPS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz: %d", resp.StatusCode)
	}
	hc.CloseIdleConnections()

	// The port serves no HTTP in clear: a token would cross in clear.
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP on the TLS port: %s, want 400", resp.Status)
		}
	}

	// Another name gets no certificate: the manager asks Let's Encrypt for
	// host only.
	if c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "other.example.org", InsecureSkipVerify: true}); err == nil {
		c.Close()
		t.Error("a certificate was served for another name")
	}
}

// TestAutocertConfigRefused: autocert with certificate files, or off port
// 443, stops the server at startup with the reason.
func TestAutocertConfigRefused(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ yaml, want string }{
		{"listen: \":8443\"\ntls:\n  autocert:\n    host: meet.example.org\n    cache_dir: " + dir + "\n", "port 443"},
		{"listen: \":443\"\ntls:\n  cert: a.pem\n  key: a.key\n  autocert:\n    host: meet.example.org\n    cache_dir: " + dir + "\n", "exclude each other"},
	} {
		err := run(context.Background(), []string{"--config", writeConfig(t, tc.yaml)}, io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
	// --listen overrides are checked against autocert too.
	ok := writeConfig(t, "listen: \":443\"\ntls:\n  autocert:\n    host: meet.example.org\n    cache_dir: "+dir+"\n")
	if err := run(context.Background(), []string{"--config", ok, "--listen", "127.0.0.1:8443"}, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "port 443") {
		t.Errorf("--listen off 443 with autocert: %v", err)
	}
}
