package inspect_test

import (
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tessera-rtc/tessera/cmd/sfu/inspect"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/signaling"
	"github.com/tessera-rtc/tessera/signaling/client"
)

const token = "s3cret-admin-token-0123"

// protected are requests every protected endpoint answers with 200 given
// the credential.
var protected = []struct{ method, path string }{
	{"GET", "/debug"},
	{"GET", "/debug/rooms"},
	{"GET", "/debug/static/debug.js"},
	{"GET", "/debug/pprof/"},
	{"GET", "/metrics"},
	{"GET", "/admin/rooms"},
}

// TestAuth checks that with a token configured every endpoint answers 401
// with WWW-Authenticate without it or with a wrong one, and 200 with it (as
// a bearer token or a browser's Basic password); that with neither token
// nor open nothing is served; and that open serves without a credential.
func TestAuth(t *testing.T) {
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	quiet := slog.New(slog.DiscardHandler) // wrong tokens are logged as warnings
	e := newEnv(t, inspect.Config{Token: token, Logger: quiet})
	refused := append(protected,
		struct{ method, path string }{"GET", "/debug/participants/r/p-x/stats"},
		struct{ method, path string }{"DELETE", "/admin/rooms/r"},
		struct{ method, path string }{"DELETE", "/admin/rooms/r/participants/p-x"},
		struct{ method, path string }{"POST", "/admin/rooms"},
		struct{ method, path string }{"GET", "/admin/nothing-here"},
	)
	for _, r := range refused {
		for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Bearer " + token[:len(token)-1], basic("admin", "nope"), "Token " + token} {
			status, h, body := request(t, r.method, e.base+r.path, auth)
			if status != http.StatusUnauthorized || errorCode(t, body) != "unauthorized" {
				t.Errorf("%s %s with %q: %d %s, want 401", r.method, r.path, auth, status, body)
			}
			if ch := strings.Join(h.Values("WWW-Authenticate"), ", "); !strings.Contains(ch, "Bearer") || !strings.Contains(ch, "Basic") {
				t.Errorf("%s %s: WWW-Authenticate %q", r.method, r.path, ch)
			}
		}
	}
	for _, r := range protected {
		for _, auth := range []string{"Bearer " + token, "bearer " + token, basic("", token), basic("ops", token)} {
			if status, _, body := request(t, r.method, e.base+r.path, auth); status != http.StatusOK {
				t.Errorf("%s %s with %q: %d %.200s, want 200", r.method, r.path, auth, status, body)
			}
		}
	}

	closed := newEnv(t, inspect.Config{Logger: quiet})
	for _, r := range protected {
		status, _, body := request(t, r.method, closed.base+r.path, "Bearer "+token)
		if status != http.StatusUnauthorized || !strings.Contains(string(body), "admin.token") {
			t.Errorf("without token or open, %s %s: %d %s", r.method, r.path, status, body)
		}
	}

	open := newEnv(t, inspect.Config{Open: true})
	for _, r := range protected {
		if status, _, body := request(t, r.method, open.base+r.path, ""); status != http.StatusOK {
			t.Errorf("open, %s %s: %d %.200s", r.method, r.path, status, body)
		}
	}
}

// TestPageServed checks what /debug serves: an HTML page that loads only
// its own script and style sheet, under a strict Content-Security-Policy.
func TestPageServed(t *testing.T) {
	e := newEnv(t, inspect.Config{Open: true})
	status, h, body := request(t, "GET", e.base+"/debug", "")
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /debug: %d %s", status, h.Get("Content-Type"))
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	for _, ref := range []string{`src="debug/static/debug.js"`, `href="debug/static/debug.css"`} {
		if !strings.Contains(string(body), ref) {
			t.Errorf("the page does not load %s", ref)
		}
	}
	if strings.Contains(string(body), "://") {
		t.Error("the page refers to another site")
	}
	for path, ctype := range map[string]string{"/debug/static/debug.js": "text/javascript", "/debug/static/debug.css": "text/css"} {
		status, h, _ := request(t, "GET", e.base+path, "")
		if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), ctype) {
			t.Errorf("GET %s: %d %s", path, status, h.Get("Content-Type"))
		}
	}
	if status, _, _ := request(t, "GET", e.base+"/debug/static/nope.js", ""); status != 404 {
		t.Errorf("GET a missing file: %d", status)
	}
	if status, h, _ := request(t, "GET", e.base+"/debug/", ""); status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Errorf("GET /debug/ does not lead to the page: %d %s", status, h.Get("Content-Type"))
	}
}

// TestAdminAPI lists rooms, removes a participant (the others see
// participant-left, its socket closes with 4000) and closes a room, and
// checks the JSON errors: 404 for unknown rooms and participants, 405 with
// Allow for other methods.
func TestAdminAPI(t *testing.T) {
	ctx := testutil.Context(t)
	e := newEnv(t, inspect.Config{Token: token})
	auth := "Bearer " + token
	do := func(method, path string) (int, http.Header, []byte) {
		t.Helper()
		return request(t, method, e.base+path, auth)
	}

	a := e.srv.Join(ctx, "standup", client.Options{Name: "Ada"})
	b := e.srv.Join(ctx, "standup", client.Options{Name: "Grace"})
	c := e.srv.Join(ctx, "standup", client.Options{Name: "Linus"})
	other := e.srv.Join(ctx, "other", client.Options{Name: "Ken"})

	list := getJSONAuth[inspect.RoomList](t, e.base+"/admin/rooms", auth)
	if len(list.Rooms) != 2 || list.Rooms[0].Name != "other" || list.Rooms[1].Name != "standup" || len(list.Rooms[1].Participants) != 3 {
		t.Fatalf("rooms = %+v", list)
	}
	if p := list.Rooms[1].Participants[0]; p.ID != a.Self.ID || p.Name != "Ada" || p.Tracks == nil {
		t.Errorf("first participant = %+v", p)
	}

	// Removing a participant: it is told, everyone else sees it leave.
	marks := map[*client.Client]int{b: b.Mark(), c: c.Mark()}
	status, _, body := do("DELETE", "/admin/rooms/standup/participants/"+a.Self.ID)
	if status != 200 || !strings.Contains(string(body), `"participant": "`+a.Self.ID+`"`) {
		t.Fatalf("DELETE participant: %d %s", status, body)
	}
	waitClosed(t, a, signaling.CloseRemoved)
	for _, cl := range []*client.Client{b, c} {
		if _, err := cl.WaitFor(ctx, marks[cl], func(ev client.Event) bool { return ev.Type == "participant-left" && ev.LeftID == a.Self.ID }); err != nil {
			t.Errorf("%s was not told that Ada left: %v", cl.Self.Name, err)
		}
	}
	list = getJSONAuth[inspect.RoomList](t, e.base+"/admin/rooms", auth)
	if n := len(list.Rooms[1].Participants); n != 2 {
		t.Errorf("standup has %d participants after the removal, want 2", n)
	}

	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"DELETE", "/admin/rooms/standup/participants/" + a.Self.ID, 404, "not-found", ""},
		{"DELETE", "/admin/rooms/nope/participants/" + b.Self.ID, 404, "not-found", ""},
		{"DELETE", "/admin/rooms/nope", 404, "not-found", ""},
		{"POST", "/admin/rooms", 405, "method-not-allowed", "GET, HEAD"},
		{"DELETE", "/admin/rooms", 405, "method-not-allowed", "GET, HEAD"},
		{"GET", "/admin/rooms/standup", 405, "method-not-allowed", "DELETE"},
		{"PUT", "/admin/rooms/standup/participants/" + b.Self.ID, 405, "method-not-allowed", "DELETE"},
		{"POST", "/debug/rooms", 405, "method-not-allowed", "GET, HEAD"},
		{"GET", "/admin/users", 404, "not-found", ""},
	} {
		status, h, body := do(tc.method, tc.path)
		if status != tc.status || errorCode(t, body) != tc.code || h.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q %s; want %d %s Allow %q", tc.method, tc.path, status, h.Get("Allow"), body, tc.status, tc.code, tc.allow)
		}
	}

	// Closing a room: everyone in it is told; the other room is untouched.
	status, _, body = do("DELETE", "/admin/rooms/standup")
	if status != 200 || !strings.Contains(string(body), `"removed": 2`) {
		t.Fatalf("DELETE room: %d %s", status, body)
	}
	waitClosed(t, b, signaling.CloseRemoved)
	waitClosed(t, c, signaling.CloseRemoved)
	list = getJSONAuth[inspect.RoomList](t, e.base+"/admin/rooms", auth)
	if len(list.Rooms) != 1 || list.Rooms[0].Name != "other" || list.Rooms[0].Participants[0].ID != other.Self.ID {
		t.Errorf("rooms after closing standup = %+v", list)
	}
}

func getJSONAuth[T any](t *testing.T, url, auth string) T {
	t.Helper()
	status, _, body := request(t, "GET", url, auth)
	if status != 200 {
		t.Fatalf("GET %s: %d %s", url, status, body)
	}
	return decode[T](t, body)
}

func waitClosed(t *testing.T, c *client.Client, code int) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s's socket is still open", c.Self.Name)
	}
	if ce := c.CloseError(); ce == nil || ce.Code != code {
		t.Errorf("%s's socket closed with %v, want %d", c.Self.Name, ce, code)
	}
}
