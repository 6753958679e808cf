package signaling

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/tessera-rtc/tessera/rooms"
)

// The HTTP side of WHIP and WHEP requests: CORS, errors as statuses, the
// bearer token, bounded bodies.

// httpCORS lets browser-based clients use the endpoints from any page: the
// token travels in Authorization, which no page sends on a user's behalf.
func httpCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", "*")
		hd.Set("Access-Control-Expose-Headers", "Location, Link, ETag, Accept-Patch")
		next.ServeHTTP(w, r)
	})
}

func (h *Handler) httpOptions(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS")
	hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	hd.Set("Accept-Post", sdpType)
	w.WriteHeader(http.StatusNoContent)
}

// httpError answers a refused request with the status of the error's
// protocol code, and counts it with the socket's errors.
func (h *Handler) httpError(w http.ResponseWriter, err error) {
	code := codeOf(err)
	h.errors[code].Add(1)
	msg := err.Error()
	if code == CodeInternal && !errors.Is(err, rooms.ErrShutdown) {
		h.log.Error("http session request failed", "err", err)
		msg = "internal error"
	} else {
		h.log.Debug("http session request refused", "code", string(code), "err", err)
	}
	status := httpStatus(err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tessera"`)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	http.Error(w, msg, status)
}

// bearer returns the request's bearer token ("" without Authorization).
func bearer(r *http.Request) (string, error) {
	a := r.Header.Get("Authorization")
	if a == "" {
		return "", nil
	}
	scheme, token, ok := strings.Cut(a, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", fmt.Errorf("%w: Authorization must be a Bearer token", errUnauthorized)
	}
	return strings.TrimSpace(token), nil
}

// readBody reads a request body of the given content type, bounded by
// MaxMessageBytes.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, want string) (string, error) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != want {
		return "", fmt.Errorf("%w: Content-Type must be %s", errMediaType, want)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxMessageBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return "", fmt.Errorf("%w: body over %d bytes", errTooLarge, h.cfg.MaxMessageBytes)
	}
	if err != nil {
		return "", badRequest("reading the body: %v", err)
	}
	return string(b), nil
}
