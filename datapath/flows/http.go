package flows

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
)

// Handler serves GET /v1/flows from store: the flows selected by the
// query parameters (see ParseFilter) as JSON lines, one Flow per line
// (Content-Type application/x-ndjson). With follow=true it then streams
// new flows, flushing as it goes, until the client goes away. A bad
// parameter is a 400 whose body names it.
func Handler(store *Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/flows", func(w http.ResponseWriter, r *http.Request) {
		serveFlows(store, w, r)
	})
	return mux
}

func serveFlows(store *Store, w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := ParseFilter(q)
	follow := false
	if err == nil && q.Has("follow") {
		if follow, err = strconv.ParseBool(q.Get("follow")); err != nil {
			err = &FilterError{"follow", q.Get("follow"), "want true or false"}
		}
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if !follow {
		for _, fl := range store.Query(f) {
			if enc.Encode(&fl) != nil {
				return
			}
		}
		return
	}
	// Subscribe before the headers go out: a client that has them sees
	// every flow added after.
	ctx, cancel := context.WithCancel(r.Context())
	ch := store.Follow(ctx, f)
	defer func() {
		cancel()
		for range ch { // until the store closes it
		}
	}()
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	for fl := range ch {
		if enc.Encode(&fl) != nil {
			return
		}
		// Flush once the backlog is written, not after every line.
		if len(ch) == 0 && rc.Flush() != nil {
			return
		}
	}
}
