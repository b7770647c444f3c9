package flows

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	s := NewStore(0)
	s.Add(testEnricher.Enrich(synDrop()))
	s.Add(testEnricher.Enrich(udpReply()))
	srv := httptest.NewServer(Handler(s))
	defer srv.Close()

	for query, want := range map[string]int{"": 2, "?verdict=dropped": 1, "?pod=x/a&protocol=udp": 1, "?port=9": 0} {
		resp, err := http.Get(srv.URL + "/v1/flows" + query)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
		if len(body) == 0 {
			lines = nil
		}
		if resp.StatusCode != 200 || len(lines) != want || resp.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Errorf("GET %s: %d %q, %d lines, want %d", query, resp.StatusCode, resp.Header.Get("Content-Type"), len(lines), want)
		}
		for _, l := range lines {
			var f Flow
			if err := json.Unmarshal([]byte(l), &f); err != nil || f.Type != "L3_L4" {
				t.Errorf("GET %s: line %q: %v", query, l, err)
			}
		}
	}

	for _, query := range []string{"?verdict=MAYBE", "?follow=perhaps", "?bogus=1"} {
		resp, err := http.Get(srv.URL + "/v1/flows" + query)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		param := strings.TrimPrefix(query, "?")
		if resp.StatusCode != 400 || !strings.Contains(string(body), param) {
			t.Errorf("GET %s: %d %q, want 400 naming %s", query, resp.StatusCode, body, param)
		}
	}
	if resp, err := http.Post(srv.URL+"/v1/flows", "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %v %v", resp.Status, err)
	}
}

func TestHandlerFollow(t *testing.T) {
	s := NewStore(0)
	s.Add(testEnricher.Enrich(udpReply())) // before the request: not sent
	srv := httptest.NewServer(Handler(s))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/flows?follow=true&verdict=dropped", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The headers came: the follower is subscribed.
	for i := range 3 {
		ev := synDrop()
		ev.SrcPort = uint16(1000 + i)
		s.Add(testEnricher.Enrich(udpReply())) // filtered out
		s.Add(testEnricher.Enrich(ev))
	}
	r := bufio.NewReader(resp.Body)
	for i := range 2 {
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		var f Flow
		if err := json.Unmarshal(line, &f); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		if src, _ := f.Ports(); f.Verdict != "DROPPED" || src != uint16(1000+i) {
			t.Errorf("line %d: %s port %d, want DROPPED port %d", i, f.Verdict, src, 1000+i)
		}
	}
	cancel()
	waitFollowers(t, s, 0)
}
