/** A Sense kernel started through a gateway moves to its notebook's folder (kernel-extension/working-dir.ts). */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { enterGatewayWorkingDir } from "../../../kernel-extension/working-dir";

describe("enterGatewayWorkingDir", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sense-wd-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("enters KERNEL_WORKING_DIR for a gateway kernel", () => {
    const moves: string[] = [];
    expect(enterGatewayWorkingDir({ KERNEL_GATEWAY: "1", KERNEL_WORKING_DIR: dir }, (d) => void moves.push(d))).toBe(dir);
    expect(moves).toEqual([dir]);
  });

  it("stays put outside a gateway, without a folder, with a relative one, or one not on this host", () => {
    const moves: string[] = [];
    const chdir = (d: string) => void moves.push(d);
    expect(enterGatewayWorkingDir({ KERNEL_WORKING_DIR: dir }, chdir)).toBeNull();
    expect(enterGatewayWorkingDir({ KERNEL_GATEWAY: "1" }, chdir)).toBeNull();
    expect(enterGatewayWorkingDir({ KERNEL_GATEWAY: "1", KERNEL_WORKING_DIR: "project" }, chdir)).toBeNull();
    expect(enterGatewayWorkingDir({ KERNEL_GATEWAY: "1", KERNEL_WORKING_DIR: path.join(dir, "missing") }, chdir)).toBeNull();
    fs.writeFileSync(path.join(dir, "file"), "");
    expect(enterGatewayWorkingDir({ KERNEL_GATEWAY: "1", KERNEL_WORKING_DIR: path.join(dir, "file") }, chdir)).toBeNull();
    expect(moves).toEqual([]);
  });
});
