package e2e

import (
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/cnilab/cnilab/lab"
)

var _ = Describe("cnilab datapath", Label("connectivity", "datapath"), func() {
	It("reports its attach mode and kernel features on every node", func(ctx SpecContext) {
		if ok, why := runsCnilab(); !ok {
			Skip("CNI " + cluster.CNI() + " has no cnilab agent: no datapath status to check (" + why + ")")
		}
		st, ok := cluster.(lab.AgentStatuser)
		if !ok {
			Skip("provider " + cluster.Provider() + " cannot read the cnilab agents' status")
		}
		for _, n := range cluster.Nodes() {
			s, err := st.AgentStatus(ctx, n.Name)
			Expect(err).NotTo(HaveOccurred())
			Expect(s["ready"]).To(Equal(true), "agent on %s ready", n.Name)
			features, _ := s["features"].(map[string]any)
			Expect(features).NotTo(BeEmpty(), "agent on %s reports kernel features", n.Name)
			want := "tcx"
			if forced := os.Getenv("CNILAB_ATTACH"); forced != "" {
				want = forced
			} else if features["tcx"] != true {
				want = "tc"
			}
			Expect(s["attachMode"]).To(Equal(want), "attach mode on %s (features %v)", n.Name, features)
		}
	})
})
