package rooms

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Join tokens. A token is a JWT signed with HS256 by whoever decides who may
// join (the operator's application, or `sfu token`), with one of the keys
// the server is configured with:
//
//	header: {"alg": "HS256", "typ": "JWT", "kid": "<key id>"}
//	claims: {
//	  "room": "standup",          // required: the one room it opens
//	  "name": "Ann",              // optional: the participant's name, imposed
//	  "exp":  1767225600,         // required: expiry, seconds since 1970
//	  "nbf":  1767222000,         // optional: not before
//	  "iat":  1767222000,         // optional: issued at
//	  "permissions": {"publish": true, "subscribe": true, "admin": false}
//	}
//
// The key id selects the key, so that a new key can be added beside the old
// one while tokens signed with either are in use. A permission the token
// leaves out is not granted. HS256 is the only algorithm accepted: a token
// claiming any other ("none" included) is refused before its signature is
// looked at.

// MinSecretLen is the shortest key secret accepted, in bytes: as long as
// the HMAC-SHA256 output.
const MinSecretLen = 32

// clockSkew is how far the clocks of the server and of a token's issuer may
// disagree on exp, nbf and iat.
const clockSkew = 30 * time.Second

// Permissions are what a participant may do in its room.
type Permissions struct {
	// Publish: send tracks. Without it, an offer that sends anything is
	// refused (sfu.ErrNotAllowed).
	Publish bool `json:"publish"`
	// Subscribe: receive others' tracks. Without it the participant is never
	// subscribed, automatically or on request (ErrForbidden).
	Subscribe bool `json:"subscribe"`
	// Admin: mute other participants' tracks.
	Admin bool `json:"admin"`
}

// noToken is what a participant joining without a token may do, where the
// room asks for none.
var noToken = Permissions{Publish: true, Subscribe: true}

// Grant is what a join token says.
type Grant struct {
	Room        string
	Name        string // empty: the client chooses its name
	Permissions Permissions
	Expires     time.Time
}

// Key is one signing key.
type Key struct {
	ID     string // the token header's "kid"
	Secret []byte // at least MinSecretLen bytes
}

// Auth verifies join tokens against a set of keys. It is immutable: a new
// set of keys is a new Auth.
type Auth struct {
	keys   map[string][]byte
	first  string // id of the first key, the one Issue signs with by default
	parser *jwt.Parser
}

// NewAuth returns an Auth accepting tokens signed with any of keys.
func NewAuth(keys ...Key) (*Auth, error) {
	if len(keys) == 0 {
		return nil, errors.New("rooms: auth needs at least one key")
	}
	a := &Auth{
		keys:  make(map[string][]byte, len(keys)),
		first: keys[0].ID,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(), // an iat in the future (beyond the skew) is refused
			jwt.WithLeeway(clockSkew),
		),
	}
	for _, k := range keys {
		switch {
		case k.ID == "":
			return nil, errors.New("rooms: auth key without an id")
		case a.keys[k.ID] != nil:
			return nil, fmt.Errorf("rooms: auth key %q given twice", k.ID)
		case len(k.Secret) < MinSecretLen:
			return nil, fmt.Errorf("rooms: auth key %q: secret of %d bytes (at least %d)", k.ID, len(k.Secret), MinSecretLen)
		}
		a.keys[k.ID] = append([]byte(nil), k.Secret...)
	}
	return a, nil
}

// claims is the JSON of a token's payload.
type claims struct {
	Room        string      `json:"room"`
	Name        string      `json:"name,omitempty"`
	Permissions Permissions `json:"permissions"`
	jwt.RegisteredClaims
}

// Validate implements jwt.ClaimsValidator: checks beyond the registered claims.
func (c claims) Validate() error {
	if c.Room == "" {
		return errNoRoom
	}
	return nil
}

// Issue signs a token for g with the key kid (empty: the first key).
func (a *Auth) Issue(g Grant, kid string) (string, error) {
	if kid == "" {
		kid = a.first
	}
	secret := a.keys[kid]
	if secret == nil {
		return "", fmt.Errorf("rooms: no auth key %q", kid)
	}
	if err := ValidName(g.Room); err != nil {
		return "", fmt.Errorf("rooms: token for an invalid room: %w", err)
	}
	if g.Expires.IsZero() {
		return "", errors.New("rooms: a token needs an expiry")
	}
	if g.Name != "" {
		if _, err := cleanName(g.Name); err != nil {
			return "", fmt.Errorf("rooms: token with an invalid name: %w", err)
		}
	}
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{
		Room: g.Room, Name: g.Name, Permissions: g.Permissions,
		RegisteredClaims: jwt.RegisteredClaims{
			ExpiresAt: jwt.NewNumericDate(g.Expires),
			IssuedAt:  jwt.NewNumericDate(now),
		},
	})
	t.Header["kid"] = kid
	return t.SignedString(secret)
}

// Verify checks a token's algorithm, key, signature and times and returns
// what it grants. Every failure wraps ErrUnauthorized.
func (a *Auth) Verify(token string) (Grant, error) {
	var c claims
	if _, err := a.parser.ParseWithClaims(token, &c, a.key); err != nil {
		return Grant{}, fmt.Errorf("%w: %s", ErrUnauthorized, tokenProblem(err))
	}
	g := Grant{Room: c.Room, Name: c.Name, Permissions: c.Permissions}
	if c.ExpiresAt != nil {
		g.Expires = c.ExpiresAt.Time
	}
	return g, nil
}

// key finds the secret named by the token's kid.
func (a *Auth) key(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errNoKid
	}
	secret := a.keys[kid]
	if secret == nil {
		return nil, errUnknownKid
	}
	return secret, nil
}

var (
	errNoKid      = errors.New("token has no key id (kid)")
	errUnknownKid = errors.New("token signed with an unknown key (kid)")
	errNoRoom     = errors.New("token has no room claim")
)

// tokenProblem says in a few words why a token was refused; it goes back to
// the client.
func tokenProblem(err error) string {
	switch {
	case errors.Is(err, errNoKid):
		return errNoKid.Error()
	case errors.Is(err, errUnknownKid):
		return errUnknownKid.Error()
	case errors.Is(err, errNoRoom):
		return errNoRoom.Error()
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if strings.Contains(err.Error(), "signing method") {
			return "signing algorithm not accepted (HS256 only)"
		}
		return "bad token signature"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token has no expiry (exp)"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token has expired"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token issued in the future (check the issuer's clock)"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token is not valid yet"
	}
	return "invalid token"
}

// access is what a client presenting a token (or none) may do in a room.
type access struct {
	perms   Permissions
	name    string    // the name the token imposes; empty: none
	expires time.Time // the token's expiry; zero: no token
}

// authorize decides what a client presenting token may do in room. A
// token, when given, is verified even where none is required, since its
// permissions apply.
func (l *Local) authorize(room, token string) (access, error) {
	l.mu.Lock()
	auth, required := l.cfg.Auth, l.tokenRequired(room)
	l.mu.Unlock()
	if token == "" {
		if required {
			return access{}, fmt.Errorf("%w: room %q requires a token", ErrUnauthorized, room)
		}
		return access{perms: noToken}, nil
	}
	if auth == nil {
		return access{}, fmt.Errorf("%w: this server accepts no tokens", ErrUnauthorized)
	}
	g, err := auth.Verify(token)
	if err != nil {
		return access{}, err
	}
	if g.Room != room {
		return access{}, fmt.Errorf("%w: the token is for another room", ErrUnauthorized)
	}
	a := access{perms: g.Permissions, expires: g.Expires}
	if g.Name != "" {
		if a.name, err = cleanName(g.Name); err != nil {
			return access{}, fmt.Errorf("%w: the token's name claim is not a valid name", ErrUnauthorized)
		}
	}
	return a, nil
}

// tokenRequired reports whether joining room needs a token: the listed
// room's own setting, or Config.RequireToken. l.mu must be held.
func (l *Local) tokenRequired(room string) bool {
	if rc, ok := l.listed(room); ok {
		return rc.RequireToken
	}
	return l.cfg.RequireToken
}

// Permissions are what the participant may do, fixed when it joined.
func (p *Participant) Permissions() Permissions { return p.perms }
