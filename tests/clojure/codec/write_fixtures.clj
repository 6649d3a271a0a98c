;; Writes one Fressian file per interop case with the reference writer.
;;
;; Usage: clojure -cp <data.fressian.jar>:<fressian.jar> write_fixtures.clj OUTDIR
;; Prints "WROTE <name>" per file and "DONE <count>" at the end.
(load-file (str (.getParent (java.io.File. ^String *file*)) "/cases.clj"))

(let [[out] *command-line-args*]
  (doseq [[name [writer-fn _]] (concat cases lone-surrogate-cases)]
    (write-case-file (str out "/" name ".fress") writer-fn)
    (println "WROTE" name))
  (println "DONE" (+ (count cases) (count lone-surrogate-cases))))
