// Package testutil holds the small helpers the tests of several packages
// share. It is for tests only.
package testutil

import (
	"context"
	"testing"
	"time"
)

// Context returns a context that ends with the test, or after 90 s: a test
// waiting on the network fails instead of hanging.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Eventually polls cond until it holds, failing the test with what after d.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
