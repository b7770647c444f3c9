package loader

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// BenchmarkFromContainer measures cnilab_from_container per packet through
// BPF_PROG_TEST_RUN (runs of up to 10,000 repetitions: ns/op is the
// program's time plus each run's setup spread over its repetitions), with
// flow events on and off:
//
//	established  a packet of a tracked connection to a remote pod, the
//	             sender's egress enforced: no event, counters only;
//	denied       a new connection denied by the receiver's ingress: a drop
//	             event per packet; the ring is emptied between runs, with
//	             the timer stopped (what writing an event costs);
//	denied-reader  the same while ReadEvents reads concurrently (on a
//	             2-CPU machine: the producer and the reader share the
//	             ring's positions and records, cache lines move between
//	             CPUs on every event);
//	denied-full  the ring is full: every event is counted lost.
//
//	go test -run '^$' -bench FromContainer ./datapath/loader/
func BenchmarkFromContainer(b *testing.B) {
	requireRoot(b)
	for _, sc := range []string{"established", "denied", "denied-reader", "denied-full"} {
		for _, events := range []bool{true, false} {
			if !events && sc != "established" && sc != "denied" {
				continue // the same as denied without events
			}
			name := fmt.Sprintf("%s/events=%s", sc, map[bool]string{true: "on", false: "off"}[events])
			b.Run(name, func(b *testing.B) {
				f := newPolicyFixture(b, Options{Mode: Native, NoEvents: !events})
				var pkt []byte
				var want uint32
				switch sc {
				case "established":
					f.set(srcIP, false, true, eg(idR, port, ProtoTCP))
					f.run("SYN", fromContainer, tcpPkt(srcIP, remIP, 40000, port, flagSYN), ifS, actOK)
					pkt, want = tcpPkt(srcIP, remIP, 40000, port, flagACK), actOK
				default:
					f.set(localIP, true, false)
					pkt, want = tcpPkt(srcIP, localIP, 40000, port, flagSYN), actShot
				}
				rd, err := ringbuf.NewReader(f.d.objs.CnilabEvents)
				if err != nil {
					b.Fatal(err)
				}
				defer rd.Close()
				drain := func() {
					rd.SetDeadline(time.Now())
					for {
						if _, err := rd.Read(); err != nil {
							return
						}
					}
				}
				switch sc {
				case "denied-reader":
					rd.Close()
					ctx, cancel := context.WithCancel(context.Background())
					done := make(chan struct{})
					go func() {
						defer close(done)
						f.d.ReadEvents(ctx, func(FlowEvent) {})
					}()
					defer func() { cancel(); <-done }()
				case "denied-full":
					for range f.d.objs.CnilabEvents.MaxEntries() / 56 {
						f.run("fill", fromContainer, pkt, ifS, want)
					}
				}
				lost0, _ := f.d.LostEvents()
				b.ResetTimer()
				for left := b.N; left > 0; {
					n := min(left, 10000)
					left -= n
					ret, err := f.d.objs.CnilabFromContainer.Run(&ebpf.RunOptions{
						Data:    pkt,
						Context: skbCtx{IngressIfindex: ifS},
						Repeat:  uint32(n),
					})
					if err != nil {
						b.Fatal(err)
					}
					if ret != want {
						b.Fatalf("verdict %d, want %d", ret, want)
					}
					if sc == "denied" {
						b.StopTimer()
						drain()
						b.StartTimer()
					}
				}
				b.StopTimer()
				lost, _ := f.d.LostEvents()
				b.ReportMetric(float64(lost-lost0)/float64(b.N), "lost/op")
			})
		}
	}
}

// run runs prog on pkt entering ifindex and checks the verdict.
func (f *policyFixture) run(what string, prog func(*Datapath) *ebpf.Program, pkt []byte, ifindex, want uint32) {
	f.t.Helper()
	if got := verdict(f.t, prog(f.d), pkt, ifindex); got != want {
		f.t.Fatalf("%s: verdict %d, want %d", what, got, want)
	}
}
