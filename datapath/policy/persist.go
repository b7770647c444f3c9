package policy

import (
	"encoding/json"
	"fmt"
)

// allocatorJSON is an Allocator at rest.
type allocatorJSON struct {
	IDs  map[string]uint32 `json:"ids"`
	Next uint32            `json:"next"`
}

// MarshalJSON saves the allocator, so a restarted agent numbers identities
// as the maps it left behind expect (Delta.Apply relies on a number never
// changing meaning between two consecutive Results).
func (a *Allocator) MarshalJSON() ([]byte, error) {
	return json.Marshal(allocatorJSON{IDs: a.ids, Next: a.next})
}

// UnmarshalJSON restores a saved allocator.
func (a *Allocator) UnmarshalJSON(b []byte) error {
	var v allocatorJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("policy: restore allocator: %w", err)
	}
	a.ids, a.keys, a.next = map[string]uint32{}, map[uint32]string{}, v.Next
	for k, id := range v.IDs {
		if id < MinIdentity || id > MaxIdentity {
			return fmt.Errorf("policy: restore allocator: identity %d of %q out of range", id, k)
		}
		if other, dup := a.keys[id]; dup {
			return fmt.Errorf("policy: restore allocator: identity %d used by %q and %q", id, other, k)
		}
		a.ids[k], a.keys[id] = id, k
	}
	return nil
}
