"""Mitigations (chapter 5): what might stop a strong student from deceiving its weak supervisor,
measured with chapter 3's controls. Built on the scenarios and the measurement layer; used by the
course layer.

    filtering   high-confidence filtering of weak labels: the paper's oracle variant and the
                realistic one, the implicit setting's helpful set cut to the kept size
    chain       bootstrapping: the weak model labels D_w2s, an intermediate learns them and labels D_gt
    confidence  the auxiliary confidence loss of Burns et al. (2023): the student's own hardened
                predictions against the weak labels
    audit       a ground-truth audit budget: how much of the deceptive cell k labels uncover, by
                which pairs a lab chooses to audit
    compare     a mitigated pipeline against the direct one: paired differences of a score with the
                crossed bootstrap, the smallest effect the comparison could detect, the verdict
    pipelines   the reward-model students of every pipeline and setting, saved through ``results``
    policy      the policy scenario (DPO, SimPO): the filter's confidence from a policy's margin, the
                chain's policy labellers, every pipeline's students (chapter 4's runs read, not retrained)
    toy         the toy world with three capacity levels (weak, intermediate, strong) and a planted
                conflict, where each mitigation's effect is known to be measurable
"""
