"""Task decoders on top of the encoder: a Transformer decoder for translation (batched beam search
with a length penalty), an RNN-T prediction and joint network for ASR (greedy and beam search),
CTC decoding (greedy and prefix beam search), and a pooled classifier for intent and LangID.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mslam.model.conformer import lengths_to_valid, masked_mean, sinusoidal_positions

NEG_INF = float("-inf")


# ----------------------------------------------------------------------------- translation
@dataclass
class TransformerDecoderConfig:
    layers: int = 6               # paper: 6-layer, 512-d Transformer decoder
    d_model: int = 512
    heads: int = 8                # unknown in the paper; the Transformer-base value
    ffn_dim: int = 2048           # unknown in the paper; the Transformer-base value
    dropout: float = 0.3          # paper: 0.3 (speech-only ST); 0.1 for joint ST+MT
    label_smoothing: float = 0.1  # unknown in the paper


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's ((5 + |y|) / 6)^alpha: alpha 0 ranks by total log-probability, larger favours longer output."""
    return ((5.0 + length) / 6.0) ** alpha


class TransformerDecoder(nn.Module):
    """Pre-LN Transformer decoder over subword targets, attending to the encoder output."""

    def __init__(self, cfg: TransformerDecoderConfig, vocab_size: int, enc_dim: int, *, pad_id: int,
                 bos_id: int, eos_id: int):
        super().__init__()
        self.cfg, self.pad_id, self.bos_id, self.eos_id = cfg, pad_id, bos_id, eos_id
        self.dropout = cfg.dropout  # of the embeddings; read at each forward
        d = cfg.d_model
        self.embed = nn.Embedding(vocab_size, d, padding_idx=pad_id)
        # Scaled by sqrt(d) in `logits`, so unit variance there. With nn.Embedding's N(0, 1) the token
        # embeddings were sqrt(d) times larger than anything cross-attention adds to the residual
        # stream, and ST decoders learned an English language model that ignored the audio.
        nn.init.normal_(self.embed.weight, std=d ** -0.5)
        with torch.no_grad():
            self.embed.weight[pad_id].zero_()
        self.enc_proj = nn.Linear(enc_dim, d) if enc_dim != d else nn.Identity()
        layer = nn.TransformerDecoderLayer(d, cfg.heads, cfg.ffn_dim, cfg.dropout, batch_first=True,
                                           norm_first=True)
        self.layers = nn.TransformerDecoder(layer, cfg.layers, norm=nn.LayerNorm(d))
        self.out = nn.Linear(d, vocab_size)

    def logits(self, tokens: torch.Tensor, memory: torch.Tensor, memory_pad: torch.Tensor) -> torch.Tensor:
        """tokens [B, L] (starting with <s>), projected memory [B, T, d], memory_pad [B, T] -> [B, L, V]."""
        length = tokens.shape[1]
        x = self.embed(tokens) * math.sqrt(self.cfg.d_model)
        x = F.dropout(x + sinusoidal_positions(length, x.shape[-1], x.device, x.dtype), self.dropout,
                      self.training)
        causal = torch.ones(length, length, dtype=torch.bool, device=tokens.device).triu(1)
        h = self.layers(x, memory, tgt_mask=causal, tgt_key_padding_mask=tokens == self.pad_id,
                        memory_key_padding_mask=memory_pad, tgt_is_causal=True)
        return self.out(h)

    def memory(self, enc: torch.Tensor, enc_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.enc_proj(enc), ~lengths_to_valid(enc_lens, enc.shape[1])

    def loss(self, enc, enc_lens, targets, target_lens) -> tuple[torch.Tensor, torch.Tensor]:
        """Label-smoothed cross-entropy of targets [B, L] (pad-padded, no <s>/</s>) -> (loss, accuracy)."""
        batch = targets.shape[0]
        targets = targets.masked_fill(~lengths_to_valid(target_lens, targets.shape[1]), self.pad_id)
        inputs = F.pad(targets, (1, 0), value=self.bos_id)
        outputs = F.pad(targets, (0, 1), value=self.pad_id)
        outputs[torch.arange(batch, device=targets.device), target_lens] = self.eos_id
        logits = self.logits(inputs, *self.memory(enc, enc_lens))
        keep = outputs != self.pad_id
        loss = F.cross_entropy(logits[keep].float(), outputs[keep], label_smoothing=self.cfg.label_smoothing)
        acc = (logits[keep].argmax(-1) == outputs[keep]).float().mean()
        return loss, acc.detach()

    @torch.no_grad()
    def beam_search(self, enc: torch.Tensor, enc_lens: torch.Tensor, *, beam: int = 5, alpha: float = 1.0,
                    max_len_ratio: float = 0.5, max_len: int = 256) -> list[list[int]]:
        """Batched beam search: every utterance keeps `beam` live prefixes; a prefix ending in </s> is
        set aside with score log p / length_penalty; an utterance stops when it has `beam` of them and
        no live prefix can do better."""
        batch, device = enc.shape[0], enc.device
        memory, memory_pad = self.memory(enc, enc_lens)
        memory, memory_pad = memory.repeat_interleave(beam, 0), memory_pad.repeat_interleave(beam, 0)
        limits = [min(max_len, int(max_len_ratio * n) + 5) for n in enc_lens.tolist()]
        seqs = torch.full((batch * beam, 1), self.bos_id, dtype=torch.long, device=device)
        scores = torch.full((batch, beam), NEG_INF, device=device)
        scores[:, 0] = 0.0
        finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
        done = [False] * batch
        for t in range(max(limits)):
            logits = self.logits(seqs, memory, memory_pad)[:, -1].float()
            logits[:, [self.pad_id, self.bos_id]] = NEG_INF  # never part of an output
            logp = logits.log_softmax(-1)
            vocab = logp.shape[-1]
            top_s, top_i = (scores.view(-1, 1) + logp).view(batch, -1).topk(2 * beam, dim=-1)
            prefixes, tokens, new_scores = [], [], []
            for b, (row_s, row_i) in enumerate(zip(top_s.tolist(), top_i.tolist())):
                alive = []
                for rank, (s, i) in enumerate(zip(row_s, row_i)):
                    if done[b] or s == NEG_INF or len(alive) == beam:
                        break
                    k, tok = divmod(i, vocab)
                    if tok == self.eos_id or t + 1 >= limits[b]:
                        if rank < beam:  # an ending outside the top `beam` is not a contender
                            hyp = seqs[b * beam + k, 1:].tolist() + ([] if tok == self.eos_id else [tok])
                            finished[b].append((s / length_penalty(len(hyp) + 1, alpha), hyp))
                    else:
                        alive.append((s, b * beam + k, tok))
                finished[b] = sorted(finished[b], reverse=True)[:beam]
                # Done when no live prefix can still beat the worst kept ending: its score only
                # falls, and the length penalty divides it by at most length_penalty(limit).
                best_alive = max((a[0] for a in alive), default=NEG_INF)
                done[b] = done[b] or not alive or (len(finished[b]) == beam and
                                                   best_alive / length_penalty(limits[b] + 1, alpha) < finished[b][-1][0])
                alive += [(NEG_INF, b * beam, self.eos_id)] * (beam - len(alive))  # dead rows (not <pad>:
                # a query whose only key is masked gives NaN)
                for s, prefix, tok in alive:
                    prefixes.append(prefix)
                    tokens.append(tok)
                    new_scores.append(s)
            if all(done):
                break
            index = torch.tensor(prefixes, device=device)
            seqs = torch.cat([seqs[index], torch.tensor(tokens, device=device)[:, None]], dim=1)
            scores = torch.tensor(new_scores, device=device).view(batch, beam)
        return [max(hyps, key=lambda h: h[0])[1] if hyps else [] for hyps in finished]


# ----------------------------------------------------------------------------- RNN-T
@dataclass
class RNNTConfig:
    layers: int = 2               # paper: 2-layer LSTM prediction network
    hidden: int = 640             # w2v-BERT's RNN-T: 640 (unknown for mSLAM)
    joint_dim: int = 640
    dropout: float = 0.1


class RNNTDecoder(nn.Module):
    """Prediction network (embedding + LSTM, started from <blank>) and an additive tanh joint network."""

    def __init__(self, cfg: RNNTConfig, vocab_size: int, enc_dim: int, blank_id: int = 0):
        super().__init__()
        self.cfg, self.blank_id = cfg, blank_id
        self.dropout = cfg.dropout  # of the embeddings; read at each forward
        self.embed = nn.Embedding(vocab_size, cfg.hidden)
        self.lstm = nn.LSTM(cfg.hidden, cfg.hidden, cfg.layers, batch_first=True,
                            dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.enc_proj = nn.Linear(enc_dim, cfg.joint_dim)
        self.pred_proj = nn.Linear(cfg.hidden, cfg.joint_dim)
        self.out = nn.Linear(cfg.joint_dim, vocab_size)

    def predict(self, tokens: torch.Tensor, state=None):
        """tokens [B, U] -> (projected prediction-network output [B, U, J], LSTM state)."""
        h, state = self.lstm(F.dropout(self.embed(tokens), self.dropout, self.training), state)
        return self.pred_proj(h), state

    def joint(self, enc_j: torch.Tensor, pred_j: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(enc_j + pred_j))

    def loss(self, enc, enc_lens, targets, target_lens) -> torch.Tensor:
        """RNN-T negative log-likelihood per target symbol (torchaudio's loss, in float32)."""
        from torchaudio.functional import rnnt_loss
        targets = targets.masked_fill(~lengths_to_valid(target_lens, targets.shape[1]), self.blank_id)
        pred, _ = self.predict(F.pad(targets, (1, 0), value=self.blank_id))
        logits = self.joint(self.enc_proj(enc)[:, :, None], pred[:, None])  # [B, T, U+1, V]
        with torch.autocast(device_type=enc.device.type, enabled=False):
            total = rnnt_loss(logits.float(), targets.int(), enc_lens.int(), target_lens.int(),
                              blank=self.blank_id, reduction="sum")
        return total / target_lens.sum().clamp(min=1)

    @torch.no_grad()
    def greedy_search(self, enc: torch.Tensor, enc_lens: torch.Tensor, max_symbols: int = 5) -> list[list[int]]:
        """Batched greedy search: per frame, emit the best symbol until <blank> wins (at most
        `max_symbols` per frame)."""
        batch, device = enc.shape[0], enc.device
        enc_j = self.enc_proj(enc)
        pred, state = self.predict(torch.full((batch, 1), self.blank_id, dtype=torch.long, device=device))
        hyps: list[list[int]] = [[] for _ in range(batch)]
        for t in range(enc.shape[1]):
            for _ in range(max_symbols):
                best = self.joint(enc_j[:, t], pred[:, 0]).argmax(-1)
                emit = (best != self.blank_id) & (t < enc_lens)
                if not emit.any():
                    break
                for b in emit.nonzero()[:, 0].tolist():
                    hyps[b].append(int(best[b]))
                new_pred, new_state = self.predict(best[:, None], state)
                pred = torch.where(emit[:, None, None], new_pred, pred)
                state = tuple(torch.where(emit[None, :, None], n, o) for n, o in zip(new_state, state))
        return hyps

    @torch.no_grad()
    def beam_search(self, enc: torch.Tensor, enc_lens: torch.Tensor, beam: int = 4,
                    max_symbols: int = 5) -> list[list[int]]:
        """Time-synchronous beam search: per frame, prefixes are extended by up to `max_symbols`
        symbols; a prefix reached along different alignments adds up their probabilities."""
        return [self._beam_one(enc[b, :int(enc_lens[b])], beam, max_symbols) for b in range(enc.shape[0])]

    def _beam_one(self, enc: torch.Tensor, beam: int, max_symbols: int) -> list[int]:
        device = enc.device
        enc_j = self.enc_proj(enc)
        pred, (h, c) = self.predict(torch.full((1, 1), self.blank_id, dtype=torch.long, device=device))
        hyps = {(): (0.0, pred[0, 0], h[:, 0], c[:, 0])}  # prefix -> (log p, prediction output, LSTM state)
        for t in range(enc.shape[0]):
            ended: dict[tuple, list] = {}  # prefixes that have consumed frame t (by emitting <blank>)
            active = hyps
            for r in range(max_symbols + 1):
                keys = list(active)
                logp = self.joint(enc_j[t][None], torch.stack([active[k][1] for k in keys])).float().log_softmax(-1)
                base = torch.tensor([active[k][0] for k in keys], device=device)
                # <blank> ends the frame; at the symbol cap the frame ends without it (as in greedy search)
                last = base if r == max_symbols else base + logp[:, self.blank_id]
                for k, s in zip(keys, last.tolist()):
                    if k in ended:
                        ended[k][0] = _logadd(ended[k][0], s)
                    else:
                        ended[k] = [s, *active[k][1:]]
                if r == max_symbols:
                    break
                grow = base[:, None] + logp
                grow[:, self.blank_id] = NEG_INF
                floor = sorted((v[0] for v in ended.values()), reverse=True)[:beam][-1]
                top_s, top_i = grow.view(-1).topk(min(beam, grow.numel()))
                chosen = [(s, *divmod(i, logp.shape[-1])) for s, i in zip(top_s.tolist(), top_i.tolist())
                          if s > floor or len(ended) < beam]  # worse than every kept prefix: pruned
                if not chosen:
                    break
                tokens = torch.tensor([[tok] for _, _, tok in chosen], device=device)
                h0 = torch.stack([active[keys[i]][2] for _, i, _ in chosen], 1)
                c0 = torch.stack([active[keys[i]][3] for _, i, _ in chosen], 1)
                pred, (h, c) = self.predict(tokens, (h0.contiguous(), c0.contiguous()))
                active = {keys[i] + (tok,): (s, pred[n, 0], h[:, n], c[:, n]) for n, (s, i, tok) in enumerate(chosen)}
            hyps = dict(sorted(ended.items(), key=lambda kv: -kv[1][0])[:beam])
        return list(max(hyps.items(), key=lambda kv: kv[1][0])[0])


# ----------------------------------------------------------------------------- CTC
def ctc_greedy(logits: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best path: argmax per frame, repeats merged, blanks dropped."""
    best = logits.argmax(-1).tolist()
    out = []
    for path, n in zip(best, lengths.tolist()):
        hyp, prev = [], blank
        for tok in path[:n]:
            if tok != blank and tok != prev:
                hyp.append(tok)
            prev = tok
        out.append(hyp)
    return out


def ctc_prefix_beam_search(logits: torch.Tensor, lengths: torch.Tensor, beam: int = 4,
                           blank: int = 0) -> list[list[int]]:
    """CTC prefix beam search: each prefix keeps the probability of ending in blank and in its last
    symbol; per frame only the `beam` most likely symbols are tried."""
    logp = logits.float().log_softmax(-1).cpu()
    return [_ctc_prefix_beam_one(logp[b, :n], beam, blank) for b, n in enumerate(lengths.tolist())]


def _logadd(*xs: float) -> float:
    m = max(xs)
    return m if m == NEG_INF else m + math.log(sum(math.exp(x - m) for x in xs))


def _ctc_prefix_beam_one(logp: torch.Tensor, beam: int, blank: int) -> list[int]:
    hyps = {(): (0.0, NEG_INF)}  # prefix -> (log p ending in blank, log p ending in its last symbol)
    for frame in logp:
        top = frame.topk(min(beam, frame.numel())).indices.tolist()
        p = frame.tolist()
        nxt: dict[tuple, list[float]] = {}

        def add(key, pb=NEG_INF, ps=NEG_INF):
            old = nxt.setdefault(key, [NEG_INF, NEG_INF])
            old[0], old[1] = _logadd(old[0], pb), _logadd(old[1], ps)
        for prefix, (pb, ps) in hyps.items():
            add(prefix, pb=_logadd(pb, ps) + p[blank])
            if prefix:
                add(prefix, ps=ps + p[prefix[-1]])  # the last symbol repeated, merged
            for tok in top:
                if tok == blank:
                    continue
                if prefix and tok == prefix[-1]:  # a repeat needs a blank in between
                    add(prefix + (tok,), ps=pb + p[tok])
                else:
                    add(prefix + (tok,), ps=_logadd(pb, ps) + p[tok])
        ranked = sorted(nxt.items(), key=lambda kv: _logadd(*kv[1]), reverse=True)[:beam]
        hyps = {k: tuple(v) for k, v in ranked}
    return list(max(hyps.items(), key=lambda kv: _logadd(*kv[1]))[0])


# ----------------------------------------------------------------------------- classification
class PooledClassifier(nn.Module):
    """The encoder output pooled over real frames, dropout, then a linear layer to the classes.
    `max` keeps each feature's strongest frame, so a feature can fire on the few frames that carry
    the class (the words of an intent, not the number spoken after them); `mean` weighs every frame
    alike; `attention` weighs frames by a learned score (softmax over the utterance)."""

    def __init__(self, enc_dim: int, num_classes: int, dropout: float = 0.1, pooling: str = "max"):
        super().__init__()
        self.dropout, self.pooling = dropout, pooling
        self.score = nn.Linear(enc_dim, 1) if pooling == "attention" else None
        self.out = nn.Linear(enc_dim, num_classes)

    def forward(self, enc: torch.Tensor, enc_lens: torch.Tensor) -> torch.Tensor:
        valid = lengths_to_valid(enc_lens, enc.shape[1])
        if self.pooling == "max":
            pooled = enc.masked_fill(~valid[..., None], float("-inf")).amax(1)
        elif self.score is None:
            pooled = masked_mean(enc, valid)
        else:
            weights = self.score(enc).squeeze(-1).float().masked_fill(~valid, float("-inf")).softmax(-1)
            pooled = torch.einsum("bt,btd->bd", weights.to(enc.dtype), enc)
        return self.out(F.dropout(pooled, self.dropout, self.training))
