// Server-created work-done progress as a cancellable notification.
//
// vscode-languageclient shows `window/workDoneProgress/create` progress in the status
// bar (ProgressLocation.Window), which has no Cancel button. The runs report progress
// that users need to stop, so this client answers the create request itself and shows
// each token in a notification whose Cancel sends `window/workDoneProgress/cancel`.

import * as vscode from "vscode";
import {
  type LanguageClient,
  WorkDoneProgress,
  type WorkDoneProgressBegin,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
  type WorkDoneProgressReport,
} from "vscode-languageclient/node";

export interface ProgressEvent {
  token: string | number;
  title: string;
  message?: string;
  done: boolean;
}

export class ServerProgress implements vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<ProgressEvent>();
  readonly onDidReport = this.emitter.event;
  private readonly active = new Map<string | number, vscode.Disposable>();

  /** Installs the create handler on a started client (again after each restart). */
  attach(client: LanguageClient): vscode.Disposable {
    return client.onRequest(WorkDoneProgressCreateRequest.type, (params) => {
      this.track(client, params.token);
      return null;
    });
  }

  private track(client: LanguageClient, token: string | number): void {
    let finish: (() => void) | undefined;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    let title = "QVR";
    let lastPercentage = 0;
    let ui: vscode.Progress<{ message?: string; increment?: number }> | undefined;
    let pending: WorkDoneProgressReport | undefined;

    const report = (value: WorkDoneProgressReport | WorkDoneProgressBegin) => {
      const update: { message?: string; increment?: number } = {};
      if (value.message) {
        update.message = value.message;
      }
      if (typeof value.percentage === "number") {
        update.increment = Math.max(0, value.percentage - lastPercentage);
        lastPercentage = Math.max(lastPercentage, value.percentage);
      }
      ui?.report(update);
      this.emitter.fire({ token, title, message: value.message, done: false });
    };

    const subscription = client.onProgress(WorkDoneProgress.type, token, (value) => {
      switch (value.kind) {
        case "begin":
          title = value.title;
          void vscode.window.withProgress(
            { location: vscode.ProgressLocation.Notification, title, cancellable: value.cancellable ?? false },
            (progress, cancel) => {
              ui = progress;
              cancel.onCancellationRequested(() => {
                void client.sendNotification(WorkDoneProgressCancelNotification.type, { token });
              });
              report(value);
              if (pending) {
                report(pending);
                pending = undefined;
              }
              return finished;
            },
          );
          break;
        case "report":
          if (ui) {
            report(value);
          } else {
            pending = value;
          }
          break;
        case "end":
          this.emitter.fire({ token, title, message: value.message, done: true });
          done();
          break;
      }
    });
    const done = () => {
      subscription.dispose();
      this.active.delete(token);
      finish?.();
    };
    this.active.set(token, { dispose: done });
  }

  dispose(): void {
    [...this.active.values()].forEach((d) => d.dispose());
    this.emitter.dispose();
  }
}
