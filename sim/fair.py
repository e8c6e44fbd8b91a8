"""Hidden fair values: the probability that each simulated market resolves YES.

The outcomes of one event share one process (``OutcomeFair``): a logit per outcome, the
probabilities their softmax, so they always sum to 1 and exactly one outcome wins. A lone binary
market is outcome 0 of a two-outcome event whose other outcome is not listed (its NO); a
mutually exclusive Kalshi event lists every outcome as a market.

Each probability is a **martingale**: the best forecast of the outcome given everything known at
the time, as a fair value should be. A plain random walk of the logit is not one (the logistic
curve is convex below 50 % and concave above, so it would drift longshots toward 50 % and make
the model itself carry a bias); two corrections make it one:
- diffusion: each logit moves by ``sigma * dW`` plus ``sigma^2 * p * dt`` (the Ito term of the
  softmax); for a binary market that is ``dX = sigma dW + sigma^2 (p - 1/2) dt``;
- jumps (news): one outcome's logit moves up or down by ``|N(0, jump_size)|``, up with the
  probability that leaves that outcome's expected probability unchanged (the others rescale in
  proportion, so theirs are unchanged too).
The one deliberate exception is ``drift_per_hour`` (the trending scenario), added to outcome 0.

Probabilities are floats (a model quantity); nothing here prices an order.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from common.numbers import ONE_DOLLAR
from sim.scenario import MarketParams

MS_PER_HOUR = 3_600_000
LOGIT_FLOOR = -30.0  # below the best outcome; keeps exp() finite, ~1e-13 of probability


def fair_price(probability: float) -> int:
    """A probability as an integer price (nearest 1/10,000 $), inside (0, 1)."""
    return max(1, min(ONE_DOLLAR - 1, round(probability * ONE_DOLLAR)))


def logit(probability: float) -> float:
    return math.log(probability / (1.0 - probability))


def softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    weights = [math.exp(z - top) for z in logits]
    total = sum(weights)
    return [w / total for w in weights]


@dataclass(slots=True)
class OutcomeFair:
    """The fair probabilities of an event's outcomes (one market per listed outcome)."""

    logits: list[float]
    params: MarketParams
    probabilities: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self.probabilities = softmax(self.logits)

    @classmethod
    def binary(cls, probability: float, params: MarketParams) -> OutcomeFair:
        return cls([logit(probability), 0.0], params)

    @property
    def component_volatility(self) -> float:
        """Each logit's volatility: a binary market's YES-vs-NO logit moves with the scenario's
        ``volatility_per_sqrt_hour``, and it is the difference of two components."""
        return self.params.volatility_per_sqrt_hour / math.sqrt(2.0)

    def step(self, rng: random.Random, dt_ms: int) -> bool:
        """Advance by ``dt_ms``; True when a news jump happened."""
        hours = dt_ms / MS_PER_HOUR
        params = self.params
        binary = len(self.logits) == 2
        if binary:
            self._diffuse_binary(rng, hours)
        else:
            self._diffuse(rng, hours)
        jumped = params.jump_rate_per_hour > 0 and rng.random() < params.jump_rate_per_hour * hours
        if jumped:
            self._jump(rng, rng.randrange(len(self.logits)), abs(rng.gauss(0.0, params.jump_size)))
        if binary:
            x = max(LOGIT_FLOOR, min(-LOGIT_FLOOR, self.logits[0] - self.logits[1]))
            self.logits = [x, 0.0]
            yes = 1.0 / (1.0 + math.exp(-x))
            self.probabilities = [yes, 1.0 - yes]
        else:
            self._settle_logits()
        return jumped

    def _diffuse(self, rng: random.Random, hours: float) -> None:
        sigma = self.component_volatility
        scale, variance = sigma * math.sqrt(hours), sigma * sigma * hours
        logits, probabilities = self.logits, self.probabilities
        for k in range(len(logits)):
            logits[k] += variance * probabilities[k] + scale * rng.gauss(0.0, 1.0)
        logits[0] += self.params.drift_per_hour * hours

    def _diffuse_binary(self, rng: random.Random, hours: float) -> None:
        """The same for two outcomes, on their difference X = z0 - z1 (one draw instead of two):
        ``dX = sigma dW + sigma^2 (p - 1/2) dt`` with sigma the scenario's volatility."""
        sigma = self.params.volatility_per_sqrt_hour
        x = self.logits[0] - self.logits[1]
        x += sigma * sigma * hours * (self.probabilities[0] - 0.5)
        x += sigma * math.sqrt(hours) * rng.gauss(0.0, 1.0) + self.params.drift_per_hour * hours
        self.logits[0], self.logits[1] = x, 0.0

    def _jump(self, rng: random.Random, outcome: int, size: float) -> None:
        before = self.probabilities[outcome]
        up = self._probability_with(outcome, size)
        down = self._probability_with(outcome, -size)
        if up - down <= 0.0:
            return
        self.logits[outcome] += size if rng.random() < (before - down) / (up - down) else -size

    def _probability_with(self, outcome: int, shift: float) -> float:
        shifted = list(self.logits)
        shifted[outcome] += shift
        return softmax(shifted)[outcome]

    def _settle_logits(self) -> None:
        top = max(self.logits)
        self.logits = [max(LOGIT_FLOOR, z - top) for z in self.logits]
        self.probabilities = softmax(self.logits)

    def draw_winner(self, rng: random.Random) -> int:
        """The outcome that happens, drawn with the current probabilities (exactly one)."""
        point = rng.random()
        for k, probability in enumerate(self.probabilities):
            point -= probability
            if point < 0.0:
                return k
        return len(self.probabilities) - 1
