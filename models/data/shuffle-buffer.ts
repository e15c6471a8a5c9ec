/**
 * A seeded shuffle buffer (webdataset's .shuffle(n)): items go in one at a time, and once the buffer is full each new
 * item pushes out a random one already held. Memory is bounded by the capacity whatever the length of the stream; an
 * item can leave at most `capacity` places before or arbitrarily long after its arrival, which is why shards are
 * also visited in a shuffled order.
 */
export class ShuffleBuffer<T> {
  private readonly items: T[] = [];

  constructor(readonly capacity: number, private readonly rng: () => number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`shuffle buffer capacity must be an integer >= 1, got ${capacity}`);
  }

  get size(): number {
    return this.items.length;
  }

  /** Holds `item`; when the buffer was already full, returns the random item it replaced. */
  add(item: T): T | undefined {
    if (this.items.length < this.capacity) {
      this.items.push(item);
      return undefined;
    }
    const k = Math.floor(this.rng() * this.capacity);
    const out = this.items[k];
    this.items[k] = item;
    return out;
  }

  /** Removes and returns a random held item (draining at the end of a finite stream); undefined when empty. */
  take(): T | undefined {
    if (this.items.length === 0) return undefined;
    const k = Math.floor(this.rng() * this.items.length);
    const out = this.items[k];
    this.items[k] = this.items[this.items.length - 1];
    this.items.pop();
    return out;
  }
}
