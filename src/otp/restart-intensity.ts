/** OTP's restart intensity: at most `intensity` restarts within a sliding window of `period` ms. */
export class RestartIntensity {
  private stamps: number[] = [];

  constructor(
    readonly intensity: number,
    readonly period: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records one restart; false when it is one too many (the caller must fail). */
  add(): boolean {
    const t = this.now();
    this.stamps.push(t);
    const horizon = t - this.period;
    while (this.stamps.length > 0 && (this.stamps[0] as number) <= horizon) this.stamps.shift();
    return this.stamps.length <= this.intensity;
  }

  get recent(): number {
    return this.stamps.length;
  }

  reset(): void {
    this.stamps = [];
  }
}
