package sfu

import (
	"slices"
	"testing"

	"github.com/pion/rtcp"
)

func TestParseFeedback(t *testing.T) {
	tcc := &rtcp.TransportLayerCC{
		SenderSSRC: 1, MediaSSRC: 2, BaseSequenceNumber: 65534, PacketStatusCount: 20, ReferenceTime: 0xfffff0, FbPktCount: 3,
		PacketChunks: []rtcp.PacketStatusChunk{
			&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 5},
			&rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeTwoBit, SymbolList: []uint16{
				rtcp.TypeTCCPacketNotReceived, rtcp.TypeTCCPacketReceivedLargeDelta, rtcp.TypeTCCPacketReceivedSmallDelta,
				rtcp.TypeTCCPacketNotReceived, rtcp.TypeTCCPacketNotReceived, rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketReceivedSmallDelta,
			}},
			&rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeOneBit, SymbolList: []uint16{1, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}},
		},
	}
	for _, c := range tcc.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for range c.RunLength {
				tcc.RecvDeltas = append(tcc.RecvDeltas, &rtcp.RecvDelta{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 1000})
			}
		case *rtcp.StatusVectorChunk:
			for _, s := range c.SymbolList {
				switch s {
				case rtcp.TypeTCCPacketReceivedSmallDelta:
					tcc.RecvDeltas = append(tcc.RecvDeltas, &rtcp.RecvDelta{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250})
				case rtcp.TypeTCCPacketReceivedLargeDelta:
					tcc.RecvDeltas = append(tcc.RecvDeltas, &rtcp.RecvDelta{Type: rtcp.TypeTCCPacketReceivedLargeDelta, Delta: -8000})
				}
			}
		}
	}
	size := tcc.MarshalSize()
	tcc.Header = rtcp.Header{Count: rtcp.FormatTCC, Type: rtcp.TypeTransportSpecificFeedback, Padding: size%4 != 0, Length: uint16((size+3)/4 - 1)}
	raw, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: 1},
		&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 2},
		&rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: 2, Nacks: []rtcp.NackPair{{PacketID: 65535, LostPackets: 0b101}}},
		tcc,
	})
	if err != nil {
		t.Fatal(err)
	}
	var f feedback
	if !parseFeedback(raw, &f) {
		t.Fatalf("not parsed: % x", raw)
	}
	if !f.keyframe || len(f.nacks) != 1 || len(f.twcc) != 1 {
		t.Fatalf("keyframe=%v nacks=%d twcc=%d", f.keyframe, len(f.nacks), len(f.twcc))
	}
	var seqs []uint16
	nackSeqs(f.nacks[0], func(s uint16) { seqs = append(seqs, s) })
	if !slices.Equal(seqs, []uint16{65535, 0, 2}) {
		t.Errorf("nacked %v", seqs)
	}
	var tw twccFeedback
	if !parseTWCC(f.twcc[0], &tw) {
		t.Fatal("twcc not parsed")
	}
	if tw.base != 65534 || len(tw.statuses) != 20 || tw.refTime != -16*64_000 {
		t.Fatalf("base %d, %d statuses, ref %d", tw.base, len(tw.statuses), tw.refTime)
	}
	want := []uint8{1, 1, 1, 1, 1, 0, 2, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 1}
	if !slices.Equal(tw.statuses, want) {
		t.Errorf("statuses %v, want %v", tw.statuses, want)
	}
	if len(tw.deltas) != len(tcc.RecvDeltas) {
		t.Fatalf("%d deltas, want %d", len(tw.deltas), len(tcc.RecvDeltas))
	}
	for i, d := range tcc.RecvDeltas {
		if tw.deltas[i] != d.Delta {
			t.Errorf("delta %d = %d µs, want %d", i, tw.deltas[i], d.Delta)
		}
	}
	if a := testing.AllocsPerRun(100, func() { parseFeedback(raw, &f); parseTWCC(f.twcc[0], &tw) }); a != 0 {
		t.Errorf("parsing allocates %.1f times", a)
	}
}

func FuzzParseFeedback(f *testing.F) {
	tcc := &rtcp.TransportLayerCC{
		MediaSSRC: 2, BaseSequenceNumber: 1, PacketStatusCount: 1,
		PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: 1, RunLength: 1}},
		RecvDeltas:   []*rtcp.RecvDelta{{Type: 1, Delta: 250}},
	}
	size := tcc.MarshalSize()
	tcc.Header = rtcp.Header{Count: rtcp.FormatTCC, Type: rtcp.TypeTransportSpecificFeedback, Padding: size%4 != 0, Length: uint16((size+3)/4 - 1)}
	raw, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: 2}, tcc})
	f.Add(raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		var fb feedback
		var tw twccFeedback
		if parseFeedback(b, &fb) {
			for _, fci := range fb.twcc {
				parseTWCC(fci, &tw)
			}
			for _, e := range fb.nacks {
				nackSeqs(e, func(uint16) {})
			}
		}
	})
}
