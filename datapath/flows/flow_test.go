package flows

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestFlowJSONGolden pins the JSON shape (Hubble's field names) of a TCP
// SYN drop and a UDP reply.
func TestFlowJSONGolden(t *testing.T) {
	for name, ev := range map[string]Event{"tcp_syn_drop": synDrop(), "udp_reply": udpReply()} {
		f := testEnricher.Enrich(ev)
		got, err := json.MarshalIndent(&f, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, '\n')
		path := filepath.Join("testdata", name+".golden")
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s JSON:\n%s\nwant:\n%s", name, got, want)
		}
		// The JSON decodes back into the same Flow.
		var back Flow
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		if again, _ := json.MarshalIndent(&back, "", "  "); !bytes.Equal(append(again, '\n'), got) {
			t.Errorf("%s: round trip differs:\n%s", name, again)
		}
	}
}
