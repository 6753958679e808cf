package signaling

import (
	"net/http"

	"github.com/tessera-rtc/tessera/rooms"
)

// WHIP (RFC 9725): an encoder (OBS, a hardware box, a pion program)
// publishes into a room with one HTTP request (httpsession.go). The
// publisher is a participant like any other for the room, marked
// rooms.ViaWHIP: it is sent nothing and never renegotiated.

// WHIP returns the handler of /whip/{room} and of the sessions' URLs
// below it; mount it at /whip/.
func (h *Handler) WHIP() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whip/{room}", func(w http.ResponseWriter, r *http.Request) {
		h.startSession(w, r, sessionSpec{via: rooms.ViaWHIP, name: "WHIP"})
	})
	mux.HandleFunc("PATCH /whip/{room}/{session}", h.sessionPatch(rooms.ViaWHIP))
	mux.HandleFunc("DELETE /whip/{room}/{session}", h.sessionDelete(rooms.ViaWHIP))
	mux.HandleFunc("OPTIONS /whip/", h.httpOptions)
	return httpCORS(mux)
}

// WHIPSessions counts the WHIP publishers connected here.
func (h *Handler) WHIPSessions() int { return h.countSessions(rooms.ViaWHIP) }
