import { sum } from "./sum.js";
document.body.append(String(sum(1, 2)));
