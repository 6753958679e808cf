package inspect

import (
	"net/http"

	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/sfu/record"
)

// RoomList is the answer of GET /admin/rooms.
type RoomList struct {
	Rooms []RoomSummary `json:"rooms"`
}

// RoomSummary describes a room and who is in it.
type RoomSummary struct {
	Name            string               `json:"name"`
	Node            string               `json:"node,omitempty"` // in a cluster, the node hosting it
	MaxParticipants int                  `json:"maxParticipants"`
	MaxViewers      int                  `json:"maxViewers,omitempty"` // WHEP viewers, counted apart
	Participants    []ParticipantSummary `json:"participants"`
	// Recording: what is published in the room is being recorded.
	Recording bool `json:"recording,omitempty"`
}

// ParticipantSummary describes a participant and what it publishes.
type ParticipantSummary struct {
	ID     string         `json:"id"`
	Name   string         `json:"name"`
	Tracks []TrackSummary `json:"tracks"`
	// Via is "whip" for a WHIP publisher, "whep" for a WHEP viewer;
	// absent for the signaling socket.
	Via string `json:"via,omitempty"`
}

// TrackSummary describes a published track.
type TrackSummary struct {
	ID     string   `json:"id"`
	Kind   string   `json:"kind"`
	Layers []string `json:"layers"`
	Muted  bool     `json:"muted"`
}

// RoomClosed is the answer of DELETE /admin/rooms/{room}.
type RoomClosed struct {
	Room    string `json:"room"`
	Removed int    `json:"removed"` // participants removed
}

// ParticipantRemoved is the answer of DELETE /admin/rooms/{room}/participants/{id}.
type ParticipantRemoved struct {
	Room        string `json:"room"`
	Participant string `json:"participant"`
}

func (s *Server) listRooms(w http.ResponseWriter, r *http.Request) {
	infos := s.cfg.Rooms.Rooms(r.Context())
	if s.cfg.Cluster != nil {
		v, err := s.cfg.Cluster(r.Context())
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, codeUnavailable, "the cluster's directory cannot be read: "+err.Error())
			return
		}
		infos = v.Rooms
	}
	list := RoomList{Rooms: make([]RoomSummary, len(infos))}
	for i, info := range infos {
		list.Rooms[i] = roomSummary(info)
	}
	writeJSON(w, http.StatusOK, list)
}

func roomSummary(info rooms.RoomInfo) RoomSummary {
	rs := RoomSummary{Name: info.Name, Node: info.Node, MaxParticipants: info.MaxParticipants, MaxViewers: info.MaxViewers, Recording: info.Recording, Participants: make([]ParticipantSummary, len(info.Participants))}
	for i, p := range info.Participants {
		ps := ParticipantSummary{ID: p.ID, Name: p.Name, Via: p.Via, Tracks: make([]TrackSummary, len(p.Tracks))}
		for j, t := range p.Tracks {
			layers := t.Layers
			if layers == nil {
				layers = []string{}
			}
			ps.Tracks[j] = TrackSummary{ID: t.ID, Kind: t.Kind, Layers: layers, Muted: t.Muted}
		}
		rs.Participants[i] = ps
	}
	return rs
}

// closeRoom removes everyone from a room; each client is told (its socket
// closed with 4000) and the others see them leave.
func (s *Server) closeRoom(w http.ResponseWriter, r *http.Request) {
	room := r.PathValue("room")
	n, err := s.cfg.Rooms.CloseRoom(r.Context(), room)
	if err != nil {
		s.registryError(w, r, room, err)
		return
	}
	s.log.Info("room closed through the admin API", "room", room, "participants", n, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, RoomClosed{Room: room, Removed: n})
}

// removeParticipant removes one participant: its client is told (4000),
// everyone else gets participant-left.
func (s *Server) removeParticipant(w http.ResponseWriter, r *http.Request) {
	room, id := r.PathValue("room"), r.PathValue("id")
	if err := s.cfg.Rooms.Remove(r.Context(), room, id); err != nil {
		s.registryError(w, r, room, err)
		return
	}
	s.log.Info("participant removed through the admin API", "room", room, "participant", id, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, ParticipantRemoved{Room: room, Participant: id})
}

// RecordingState is the answer of PUT and DELETE
// /admin/rooms/{room}/recording.
type RecordingState struct {
	Room      string `json:"room"`
	Recording bool   `json:"recording"`
}

// RecordingList is the answer of GET /admin/recordings: the files being
// written and the last ones finished.
type RecordingList struct {
	Recordings []record.Info `json:"recordings"`
}

// setRecording starts (PUT) or stops (DELETE) recording a room.
func (s *Server) setRecording(w http.ResponseWriter, r *http.Request, on bool) {
	room := r.PathValue("room")
	if s.cfg.SetRecording == nil {
		s.registryError(w, r, room, rooms.ErrNoRecorder)
		return
	}
	if err := s.cfg.SetRecording(r.Context(), room, on); err != nil {
		s.registryError(w, r, room, err)
		return
	}
	s.log.Info("room recording set through the admin API", "room", room, "on", on, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, RecordingState{Room: room, Recording: on})
}

func (s *Server) listRecordings(w http.ResponseWriter, _ *http.Request) {
	out := RecordingList{Recordings: []record.Info{}}
	if s.cfg.Recorder != nil {
		out.Recordings = append(out.Recordings, s.cfg.Recorder.Recordings()...)
	}
	writeJSON(w, http.StatusOK, out)
}
