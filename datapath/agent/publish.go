package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cnilab/cnilab/datapath/api"
)

// statusFieldManager owns the annotation in the Node's managed fields.
const statusFieldManager = "cnilab-agent"

// AgentStatus is the status the agent publishes on its Node (see
// api.AgentStatusAnnotation), as of now.
func (a *Agent) AgentStatus(now time.Time) api.AgentStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := api.AgentStatus{Ready: a.ready, Kernel: a.kernel, RoutingMode: a.cfg.RoutingMode,
		Endpoints: len(a.endpoints), Version: a.cfg.Version, Updated: now.UTC().Truncate(time.Second)}
	if !a.ready {
		s.Phase = a.phase
	}
	if a.dp != nil {
		s.AttachMode = a.dp.AttachMode()
		for k, v := range a.dp.Features() {
			if b, ok := v.(bool); ok {
				if s.Features == nil {
					s.Features = map[string]bool{}
				}
				s.Features[k] = b
			}
		}
	}
	if a.policy != nil {
		s.Policies = a.policy.stats.Policies
	}
	return s
}

// sameStatus says whether two statuses differ only in their Updated time.
func sameStatus(x, y api.AgentStatus) bool {
	x.Updated, y.Updated = time.Time{}, time.Time{}
	return reflect.DeepEqual(x, y)
}

// publishStatus keeps the agent's status annotation on its Node until ctx
// ends: at once, on every readiness change, when something else in it
// changed (checked every statusMinInterval), and every statusRefresh even
// if nothing did, so readers can tell a live agent from a gone one. A
// failed write is logged and retried on the next tick, never fatal. When
// ctx ends it writes once more: Run ends ctx only after marking the agent
// stopped.
func (a *Agent) publishStatus(ctx context.Context) {
	var (
		last    api.AgentStatus
		lastAt  time.Time
		current bool // last is what the Node holds
		lastErr string
	)
	publish := func(ctx context.Context) {
		now := time.Now()
		s := a.AgentStatus(now)
		if err := a.patchStatus(ctx, s); err != nil {
			current = false
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				a.log.Warn("publish agent status (retrying; not fatal)", "node", a.cfg.NodeName, "err", err)
			} else {
				a.log.Debug("publish agent status", "node", a.cfg.NodeName, "err", err)
			}
			return
		}
		if lastErr != "" {
			a.log.Info("published agent status", "node", a.cfg.NodeName)
		}
		last, lastAt, current, lastErr = s, now, true, ""
	}
	publish(ctx)
	tick := time.NewTicker(a.statusMinInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			publish(fctx)
			cancel()
			return
		case <-a.statusKick:
			publish(ctx)
		case now := <-tick.C:
			if !current || !sameStatus(a.AgentStatus(now), last) || now.Sub(lastAt) >= a.statusRefresh {
				publish(ctx)
			}
		}
	}
}

// patchStatus writes s as the annotation of the agent's own Node through the
// nodes/status subresource (RBAC: patch on nodes/status), a merge patch that
// touches that one annotation and needs no resourceVersion.
func (a *Agent) patchStatus(ctx context.Context, s api.AgentStatus) error {
	if a.client == nil {
		return fmt.Errorf("no Kubernetes client")
	}
	v, err := json.Marshal(s)
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{api.AgentStatusAnnotation: string(v)}}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = a.client.CoreV1().Nodes().Patch(ctx, a.cfg.NodeName, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: statusFieldManager}, "status")
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("%w (the agent's RBAC needs: apiGroups [\"\"], resources [nodes/status], verbs [patch])", err)
	}
	return err
}
