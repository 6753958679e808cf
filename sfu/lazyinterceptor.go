package sfu

import (
	"sync"

	"github.com/pion/interceptor"
)

// publisherOnly makes an interceptor that acts on what a peer sends the
// server (its remote streams) only once the peer sends something: until
// its first incoming stream is bound the interceptor does not exist. NACK
// generation and TWCC feedback each run a 100 ms ticker per peer; a peer
// that only subscribes, most peers of a large room, then runs neither.
//
// The wrapped interceptor may use only BindRTCPWriter (whose writer it
// must return unchanged), BindRemoteStream, UnbindRemoteStream and Close,
// as pion's nack.GeneratorInterceptor and twcc.SenderInterceptor do.
type publisherOnly struct{ interceptor.Factory }

// NewInterceptor implements interceptor.Factory.
func (f publisherOnly) NewInterceptor(id string) (interceptor.Interceptor, error) {
	return &lazyInterceptor{factory: f.Factory, id: id}, nil
}

type lazyInterceptor struct {
	interceptor.NoOp
	factory interceptor.Factory
	id      string

	mu     sync.Mutex
	writer interceptor.RTCPWriter  // guarded by mu: the peer's, from BindRTCPWriter
	inner  interceptor.Interceptor // guarded by mu: made at the first remote stream
	closed bool                    // guarded by mu
}

func (l *lazyInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writer = w
	return w
}

func (l *lazyInterceptor) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	l.mu.Lock()
	if l.inner == nil && !l.closed {
		in, err := l.factory.NewInterceptor(l.id)
		if err == nil {
			if l.writer != nil {
				in.BindRTCPWriter(l.writer)
			}
			l.inner = in
		}
	}
	in := l.inner
	l.mu.Unlock()
	if in == nil {
		return r
	}
	return in.BindRemoteStream(info, r)
}

func (l *lazyInterceptor) UnbindRemoteStream(info *interceptor.StreamInfo) {
	if in := l.get(); in != nil {
		in.UnbindRemoteStream(info)
	}
}

func (l *lazyInterceptor) Close() error {
	l.mu.Lock()
	l.closed = true
	in := l.inner
	l.mu.Unlock()
	if in == nil {
		return nil
	}
	return in.Close()
}

func (l *lazyInterceptor) get() interceptor.Interceptor {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inner
}
