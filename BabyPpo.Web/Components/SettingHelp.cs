namespace BabyPpo.Web.Components;

/// <summary>One line per setting of the form, for the people who fill it in (trl's names in parentheses).</summary>
public static class SettingHelp
{
    public static readonly IReadOnlyDictionary<string, string> Ppo = new Dictionary<string, string>
    {
        ["seed"] = "Seed of the mini-batch order inside each PPO step, reseeded from it and the step number so that a resumed run replays it (trl: seed). Prompt order, sampling and value-head initialisation follow the run's seed above.",
        ["learningRate"] = "Adam learning rate (learning_rate).",
        ["adaptiveKlControl"] = "Adapt the KL coefficient towards the target KL (adap_kl_ctrl); off keeps it fixed.",
        ["initKlCoef"] = "Initial weight of the KL penalty to the reference model (init_kl_coef).",
        ["klPenalty"] = "Per-token KL estimator in the reward (kl_penalty): kl = logp − logp_ref, abs, mse = ½(…)², full = the exact KL over the vocabulary.",
        ["target"] = "Target KL of the adaptive controller (target).",
        ["horizon"] = "Horizon of the adaptive controller, in samples (horizon).",
        ["gamma"] = "Discount factor (gamma).",
        ["lam"] = "GAE λ (lam).",
        ["clipRange"] = "Clip range of the policy ratio (cliprange).",
        ["clipRangeValue"] = "Clip range of the value prediction around the old value (cliprange_value).",
        ["vfCoef"] = "Weight of the value loss (vf_coef).",
        ["batchSize"] = "Prompts per PPO step (batch_size).",
        ["miniBatchSize"] = "Samples per forward/backward pass (mini_batch_size); must divide the batch.",
        ["gradientAccumulationSteps"] = "Mini-batches summed before one optimizer step (gradient_accumulation_steps).",
        ["ppoEpochs"] = "Passes over the batch per step (ppo_epochs).",
        ["maxGradNorm"] = "Clip the gradient norm to this; empty = off (max_grad_norm).",
        ["earlyStopping"] = "Stop a step's epochs early when the policy KL exceeds 1.5 × target KL (early_stopping).",
        ["targetKl"] = "KL threshold of early stopping (target_kl).",
        ["ratioThreshold"] = "Skip a mini-batch whose mean ratio exceeds this (ratio_threshold).",
        ["useScoreScaling"] = "Divide scores by their running standard deviation (use_score_scaling).",
        ["useScoreNorm"] = "With score scaling, also subtract the running mean (use_score_norm).",
        ["scoreClip"] = "Clip scores to ± this; empty = off (score_clip).",
        ["whitenRewards"] = "Whiten the per-token rewards before GAE (whiten_rewards).",
        ["adamBeta1"] = "Adam β₁.",
        ["adamBeta2"] = "Adam β₂.",
        ["adamEps"] = "Adam ε.",
        ["valueHeadDropout"] = "Dropout before the value head (summary_dropout_prob).",
        ["valueHeadDropoutInTraining"] = "Apply that dropout in training passes (trl 0.8.6 never does).",
    };

    public static readonly IReadOnlyDictionary<string, string> RewardSettings = new Dictionary<string, string>
    {
        ["judgeTemplate"] = "score: the judge's prompt; {mot} becomes the mother's utterance and {chi} the answer (must hold {chi}). Pre-filled with the seed system's.",
        ["judgeMaxTokens"] = "score: new tokens the judge writes (greedily) before its rating is read.",
        ["defaultScore"] = "score: the reward of an answer whose judge output holds no number from 0 to 5.",
        ["confidenceVariant"] = "confidence: rank the answer among the teacher's answers by summed log-probability (sum, the seed's; favours short answers) or per-token mean (mean-per-token).",
        ["semsimBatchSize"] = "semsim: texts per call of the sentence encoder (speed and memory only).",
        ["referenceAggregation"] = "bleu and semsim: combine the scores against several teacher answers by their mean, their best (max), or use the first answer only.",
        ["runningNormalisation"] = "Several rewards: standardise each by its running mean and standard deviation over the batches so far before weighting; saved with checkpoints.",
    };

    public static readonly IReadOnlyDictionary<string, string> Generation = new Dictionary<string, string>
    {
        ["maxNewTokens"] = "New tokens per answer at most.",
        ["minNewTokens"] = "Tokens before the end of text is allowed.",
        ["topK"] = "Sample from the k likeliest tokens; 0 = off.",
        ["topP"] = "Nucleus sampling mass; 1 = off.",
        ["temperature"] = "Sampling temperature.",
        ["batchSize"] = "Prompts per generation batch.",
    };
}
