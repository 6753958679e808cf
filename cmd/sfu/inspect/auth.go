package inspect

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
)

// realm names the protection space in WWW-Authenticate.
const realm = "tessera admin"

// authenticator checks the admin credential: "Authorization: Bearer
// <token>", or HTTP Basic with the token as password (what a browser sends
// after its login prompt, so that /debug can be opened in one).
type authenticator struct {
	open  bool
	token [sha256.Size]byte // hash of the token; comparing hashes hides its length
	set   bool              // a token is configured
}

func newAuthenticator(token string, open bool) authenticator {
	return authenticator{open: open, token: sha256.Sum256([]byte(token)), set: token != ""}
}

// allow reports whether r may proceed; otherwise it has answered 401.
func (a authenticator) allow(w http.ResponseWriter, r *http.Request, log *slog.Logger) bool {
	if a.open {
		return true
	}
	given, scheme := credential(r)
	if given != "" && a.set && a.matches(given) {
		return true
	}
	msg := "this endpoint requires the admin token: Authorization: Bearer <token>"
	switch {
	case !a.set:
		msg = "the admin endpoints are disabled: set admin.token (or admin.open) in the configuration"
	case given != "":
		msg = "wrong admin token"
		log.Warn("admin request with a wrong token", "path", r.URL.Path, "remote", r.RemoteAddr, "scheme", scheme)
	}
	h := w.Header()
	h.Add("WWW-Authenticate", `Bearer realm="`+realm+`"`)
	h.Add("WWW-Authenticate", `Basic realm="`+realm+`", charset="UTF-8"`)
	writeError(w, http.StatusUnauthorized, codeUnauthorized, msg)
	return false
}

func (a authenticator) matches(given string) bool {
	h := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(h[:], a.token[:]) == 1
}

// credential extracts the token a request presents, and how.
func credential(r *http.Request) (token, scheme string) {
	v := r.Header.Get("Authorization")
	if s, tok, ok := strings.Cut(v, " "); ok && strings.EqualFold(s, "Bearer") {
		return strings.TrimSpace(tok), "bearer"
	}
	if _, pass, ok := r.BasicAuth(); ok {
		return pass, "basic"
	}
	return "", ""
}
