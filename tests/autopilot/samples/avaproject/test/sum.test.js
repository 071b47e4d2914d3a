import test from "ava";
import { sum } from "../src/sum.js";

test("sums", (t) => {
  t.is(sum(1, 2), 3);
});
