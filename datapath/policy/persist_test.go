package policy

import (
	"encoding/json"
	"testing"
)

func TestAllocatorSurvivesJSON(t *testing.T) {
	a := NewAllocator()
	if err := a.assign([]string{"a", "b", "c"}); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	r := NewAllocator()
	if err := json.Unmarshal(b, r); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		want, _ := a.Lookup(k)
		if got, ok := r.Lookup(k); !ok || got != want {
			t.Errorf("%s: restored %d, want %d", k, got, want)
		}
	}
	// New keys continue after the saved counter, never reusing a number.
	if err := r.assign([]string{"a", "d"}); err != nil {
		t.Fatal(err)
	}
	d, _ := r.Lookup("d")
	for _, k := range []string{"a", "b", "c"} {
		if old, _ := a.Lookup(k); old == d {
			t.Errorf("new key d reused %s's identity %d", k, d)
		}
	}
	if err := json.Unmarshal([]byte(`{"ids":{"x":5,"y":5}}`), NewAllocator()); err == nil {
		t.Error("restored an allocator with out-of-range identities")
	}
}
